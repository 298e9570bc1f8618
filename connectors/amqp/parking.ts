import amqp, { type ConfirmChannel, type GetMessage } from 'amqplib';

/**
 * Moving messages out of a parked queue, on its own connection and confirm channel (the broker's
 * consumers are not involved). A message is never lost while it moves: it is published with a confirm
 * to its target (the work queue, or the parked queue again when it is kept) BEFORE the parked copy is
 * acknowledged; a crash in between leaves a duplicate, which the idempotent consumers absorb.
 */
export interface ParkedCopy {
  messageId?: string;
  correlationId?: string;
  headers: Record<string, unknown>;
  content: Buffer;
  body: unknown;
}

const BATCH = 100;

export interface MoveResult { moved: number; kept: number; seen: number }

export async function moveParked(url: string, o: {
  from: string;
  to: string;
  /** new headers to move it with, or undefined to keep it parked */
  decide: (m: ParkedCopy) => Promise<Record<string, unknown> | undefined>;
  /** called once a message has been moved (published and confirmed, parked copy acknowledged) */
  moved?: (m: ParkedCopy) => Promise<void>;
}): Promise<MoveResult> {
  const conn = await amqp.connect(url, { clientProperties: { connection_name: 'gkh-bus parking' } });
  const r: MoveResult = { moved: 0, kept: 0, seen: 0 };
  try {
    const ch = await conn.createConfirmChannel();
    let returned = false;
    ch.on('return', () => { returned = true; });
    ch.on('error', () => {});
    // only the messages there now: kept ones go back to the tail and are not seen twice
    const { messageCount } = await ch.checkQueue(o.from);
    await ch.checkQueue(o.to);
    // in batches: get, decide, publish each with a confirm, wait for the confirms, then acknowledge the parked copies
    for (let done = 0; done < messageCount;) {
      const batch: { msg: GetMessage; copy: ParkedCopy; move: boolean; confirmed: Promise<void> }[] = [];
      while (batch.length < BATCH && done < messageCount) {
        const msg = await ch.get(o.from, { noAck: false });
        if (!msg) { done = messageCount; break; }
        done++;
        r.seen++;
        const copy = toCopy(msg);
        let headers: Record<string, unknown> | undefined;
        try {
          headers = await o.decide(copy);
        } catch {
          headers = undefined; // cannot decide (database down): keep it parked
        }
        batch.push({ msg, copy, move: !!headers, confirmed: publish(ch, headers ? o.to : o.from, msg, headers ?? copy.headers) });
      }
      if (!batch.length) break;
      await Promise.all(batch.map((b) => b.confirmed));
      if (returned) throw new Error(`a message was returned as unroutable; the batch stays in ${o.from}`);
      // one acknowledgement for the whole batch (every earlier delivery on this channel is settled already): a quorum
      // queue applies it as one command; many single acks just before the channel closes were seen to be lost
      ch.ack(batch[batch.length - 1].msg, true);
      for (const b of batch) {
        if (b.move) {
          r.moved++;
          await o.moved?.(b.copy);
        } else r.kept++;
      }
    }
    await ch.close();
  } finally {
    await conn.close().catch(() => {});
  }
  return r;
}

function toCopy(msg: GetMessage): ParkedCopy {
  let body: unknown;
  try { body = JSON.parse(msg.content.toString('utf8')); } catch { body = undefined; }
  return { messageId: msg.properties.messageId, correlationId: msg.properties.correlationId, headers: (msg.properties.headers ?? {}) as Record<string, unknown>, content: msg.content, body };
}

function publish(ch: ConfirmChannel, queue: string, msg: GetMessage, headers: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.publish('', queue, msg.content, {
      persistent: true, mandatory: true, contentType: msg.properties.contentType ?? 'application/json',
      messageId: msg.properties.messageId, correlationId: msg.properties.correlationId, headers,
      timestamp: Math.floor(Date.now() / 1000),
    }, (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
  });
}

/** Depth of the given queues, on a short-lived connection (the CLI has no broker running). */
export async function queueDepths(url: string, names: string[]): Promise<Record<string, number | null>> {
  const conn = await amqp.connect(url);
  const out: Record<string, number | null> = {};
  try {
    for (const n of names) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try { out[n] = (await ch.checkQueue(n)).messageCount; } catch { out[n] = null; }
      await ch.close().catch(() => {});
    }
  } finally {
    await conn.close().catch(() => {});
  }
  return out;
}
