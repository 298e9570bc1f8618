import amqp, { type ChannelModel, type ConfirmChannel, type Channel, type ConsumeMessage } from 'amqplib';
import type { Logger } from '../log.ts';
import type { Topology } from './topology.ts';

export interface BusMessage<T = unknown> {
  body: T;
  messageId?: string;
  correlationId?: string;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** application-level attempt number (1 on the first delivery) */
  attempt: number;
}

/** What a consumer decided; the broker does the acknowledgement after the handler's own commit. */
export type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; reason: string }
  | { kind: 'park'; reason: string };

export const ack: Outcome = { kind: 'ack' };

export interface PublishOptions {
  messageId?: string;
  correlationId?: string;
  headers?: Record<string, unknown>;
}

interface ConsumerReg {
  queue: string;
  prefetch: number;
  handler: (m: BusMessage) => Promise<Outcome>;
  retryQueues: string[];
  channel?: Channel;
  tag?: string;
  inFlight: Set<Promise<unknown>>;
}

/**
 * One connection, one confirm channel for publishing, one channel per consumer.
 * Declares the topology at every (re)connect; reconnects with back-off after a broker loss
 * and resumes the consumers. Publishes wait for the broker's confirm and fail on `basic.return`.
 */
export class Broker {
  private conn?: ChannelModel;
  private pub?: ConfirmChannel;
  /**
   * Returned (unroutable, mandatory) messages by channel and messageId: the broker sends basic.return before the
   * confirm, so the publish callback finds its message here (one listener per channel, not one per publish).
   */
  private returned = new WeakMap<ConfirmChannel, Set<string | undefined>>();
  private consumers: ConsumerReg[] = [];
  private closing = false;
  private connecting?: Promise<void>;
  private reopening?: Promise<void>;
  connected = false;
  reconnects = 0;

  constructor(private url: string, readonly topology: Topology, private log: Logger) {}

  async start(): Promise<void> {
    await this.connectWithRetry(true);
  }

  private async connectWithRetry(first: boolean): Promise<void> {
    let delay = 200;
    for (let attempt = 1; ; attempt++) {
      if (this.closing) return;
      try {
        await this.connect();
        if (!first) {
          this.reconnects++;
          this.log.info('broker reconnected', { attempt });
        }
        return;
      } catch (e) {
        if (first && attempt >= 5) throw new Error(`cannot connect to RabbitMQ at ${redact(this.url)}: ${(e as Error).message}`);
        this.log.warn('broker connect failed, retrying', { attempt, delayMs: delay, err: e });
        await sleep(delay);
        delay = Math.min(delay * 2, 15_000);
      }
    }
  }

  private async connect(): Promise<void> {
    const u = new URL(this.url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '30');
    const conn = await amqp.connect(u.toString(), { clientProperties: { connection_name: `gkh-bus ${this.topology.prefix}` } });
    conn.on('error', (e) => this.log.warn('broker connection error', { err: e }));
    conn.on('close', () => this.onClose(conn));
    try {
      await declare(conn, this.topology);
      const pub = await this.openPublisher(conn);
      this.conn = conn;
      this.pub = pub;
      this.connected = true;
      for (const c of this.consumers) await this.startConsumer(c);
    } catch (e) {
      await conn.close().catch(() => {});
      throw e;
    }
  }

  /**
   * The confirm channel for publishing. A channel-level error (the connection stays up) closes only the
   * channel: a new one is opened, and publishes wait for it; unconfirmed publishes fail and are sent again.
   */
  private async openPublisher(conn: ChannelModel): Promise<ConfirmChannel> {
    const pub = await conn.createConfirmChannel();
    pub.on('error', (e) => this.log.warn('publish channel error', { err: e }));
    const returned = new Set<string | undefined>();
    this.returned.set(pub, returned);
    pub.on('return', (m) => {
      returned.add(m.properties.messageId);
      this.log.error('message returned as unroutable', { exchange: m.fields.exchange, key: m.fields.routingKey });
    });
    pub.on('close', () => {
      if (this.pub !== pub) return;
      this.pub = undefined;
      if (!this.closing && this.conn === conn) {
        this.log.warn('publish channel closed; opening another');
        this.reopenPublisher(conn);
      }
    });
    return pub;
  }

  private reopenPublisher(conn: ChannelModel): void {
    this.reopening ??= this.openPublisher(conn)
      .then((p) => { if (this.conn === conn && !this.closing) this.pub = p; else void p.close().catch(() => {}); })
      .catch((e) => this.log.warn('could not open a publish channel', { err: e }))
      .finally(() => (this.reopening = undefined));
  }

  private onClose(conn: ChannelModel): void {
    if (conn !== this.conn) return;
    this.connected = false;
    this.conn = undefined;
    this.pub = undefined;
    for (const c of this.consumers) c.channel = undefined;
    if (this.closing) return;
    this.log.warn('broker connection lost; reconnecting');
    this.connecting ??= this.connectWithRetry(false).finally(() => (this.connecting = undefined));
  }

  async publish(exchange: string, key: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const ch = this.pub;
      if (!ch) {
        if (this.closing) throw new Error('broker is closing');
        if (attempt > 600) throw new Error('broker unavailable');
        if (this.conn && !this.connecting && !this.reopening) this.reopenPublisher(this.conn);
        await (this.connecting ?? this.reopening ?? sleep(100));
        await sleep(50);
        continue;
      }
      try {
        await new Promise<void>((resolve, reject) => {
          const returned = this.returned.get(ch);
          ch.publish(exchange, key, Buffer.from(JSON.stringify(body)), {
            persistent: true,
            mandatory: true,
            contentType: 'application/json',
            messageId: opts.messageId,
            correlationId: opts.correlationId,
            headers: opts.headers,
            timestamp: Math.floor(Date.now() / 1000),
          }, (err) => {
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else if (returned?.delete(opts.messageId)) reject(new Error(`unroutable: ${exchange}/${key}`));
            else resolve();
          });
        });
        return;
      } catch (e) {
        // a nack or a channel loss: the outcome is unknown, so publish again (consumers are idempotent)
        if (this.closing || attempt > 20) throw e;
        this.log.warn('publish not confirmed, retrying', { exchange, key, err: e });
        await sleep(Math.min(100 * 2 ** attempt, 5000));
      }
    }
  }

  async consume(queue: string, handler: (m: BusMessage) => Promise<Outcome>, opts: { prefetch: number; retryQueues?: string[] }): Promise<void> {
    const reg: ConsumerReg = { queue, handler, prefetch: opts.prefetch, retryQueues: opts.retryQueues ?? [], inFlight: new Set() };
    this.consumers.push(reg);
    if (this.conn) await this.startConsumer(reg);
  }

  private async startConsumer(reg: ConsumerReg): Promise<void> {
    const conn = this.conn!;
    const ch = await conn.createChannel();
    ch.on('error', (e) => this.log.warn('consumer channel error', { queue: reg.queue, err: e }));
    // a channel-level error (e.g. an ack the broker refuses) or a cancel by the broker closes only this
    // channel: consume again on a new one while the connection lives (a connection loss is onClose's job)
    ch.on('close', () => {
      if (reg.channel !== ch) return;
      reg.channel = undefined;
      if (!this.closing && this.conn === conn) this.resumeConsumer(reg, conn);
    });
    await ch.prefetch(reg.prefetch);
    reg.channel = ch;
    const r = await ch.consume(reg.queue, (msg) => {
      if (!msg) {
        this.log.warn('consumer cancelled by the broker; consuming again', { queue: reg.queue });
        void ch.close().catch(() => {});
        return;
      }
      const p = this.handle(reg, ch, msg);
      reg.inFlight.add(p);
      void p.finally(() => reg.inFlight.delete(p));
    }, { noAck: false });
    reg.tag = r.consumerTag;
  }

  private resumeConsumer(reg: ConsumerReg, conn: ChannelModel, delayMs = 500): void {
    this.log.warn('consumer channel closed; consuming again', { queue: reg.queue, delayMs });
    setTimeout(() => {
      if (this.closing || this.conn !== conn || reg.channel) return;
      this.startConsumer(reg).catch((e) => {
        this.log.warn('could not resume consumer', { queue: reg.queue, err: e });
        this.resumeConsumer(reg, conn, Math.min(delayMs * 2, 15_000));
      });
    }, delayMs).unref();
  }

  private async handle(reg: ConsumerReg, ch: Channel, msg: ConsumeMessage): Promise<void> {
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const attempt = Number(headers['x-attempt'] ?? 1);
    let outcome: Outcome;
    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      outcome = { kind: 'park', reason: 'message body is not JSON' };
    }
    try {
      outcome ??= await reg.handler({
        body, headers, attempt,
        messageId: msg.properties.messageId, correlationId: msg.properties.correlationId,
        redelivered: msg.fields.redelivered,
      });
    } catch (e) {
      this.log.error('handler failed', { queue: reg.queue, messageId: msg.properties.messageId, err: e });
      outcome = { kind: 'retry', reason: (e as Error).message };
    }
    try {
      if (outcome.kind === 'retry' && attempt > reg.retryQueues.length) {
        outcome = { kind: 'park', reason: `retries exhausted after ${attempt} attempts: ${outcome.reason}` };
      }
      if (outcome.kind !== 'ack') {
        const history = Array.isArray(headers['x-history']) ? (headers['x-history'] as unknown[]) : [];
        const next: Record<string, unknown> = {
          ...headers,
          'x-attempt': attempt + 1,
          'x-reason': outcome.reason,
          'x-history': [...history, { at: new Date().toISOString(), attempt, outcome: outcome.kind, reason: outcome.reason.slice(0, 500) }],
        };
        if (outcome.kind === 'retry') {
          const tier = reg.retryQueues[attempt - 1];
          await this.publish(this.topology.retryExchange, tier, body, { messageId: msg.properties.messageId, correlationId: msg.properties.correlationId, headers: next });
        } else {
          next['x-parked-from'] = reg.queue;
          await this.publish(this.topology.parkExchange, `${reg.queue}.parked`, body ?? msg.content.toString('utf8'), { messageId: msg.properties.messageId, correlationId: msg.properties.correlationId, headers: next });
        }
      }
      ch.ack(msg);
    } catch (e) {
      // channel gone: the broker redelivers the message; handlers are idempotent
      this.log.warn('could not settle message; it will be redelivered', { queue: reg.queue, err: e });
    }
  }

  /** Stops consuming, waits for in-flight handlers (graceful drain), then closes. */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.consumers) {
      if (c.channel && c.tag) await c.channel.cancel(c.tag).catch(() => {});
    }
    await Promise.allSettled(this.consumers.flatMap((c) => [...c.inFlight]));
    await this.conn?.close().catch(() => {});
    this.conn = undefined;
    this.connected = false;
  }

  async queueDepths(): Promise<Record<string, { messages: number; consumers: number }>> {
    const out: Record<string, { messages: number; consumers: number }> = {};
    if (!this.conn) return out;
    const ch = await this.conn.createChannel();
    ch.on('error', () => {});
    try {
      for (const q of this.topology.queues) {
        const r = await ch.checkQueue(q.name);
        out[q.name] = { messages: r.messageCount, consumers: r.consumerCount };
      }
    } finally {
      await ch.close().catch(() => {});
    }
    return out;
  }
}

/** Declares everything; a 406 (queue exists with other arguments) becomes a message that names the queue. */
export async function declare(conn: ChannelModel, t: Topology): Promise<void> {
  for (const x of t.exchanges) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      await ch.assertExchange(x.name, x.type, { durable: true, arguments: x.arguments });
    } catch (e) {
      throw new Error(`exchange ${x.name}: exists with other settings than the topology declares (${(e as Error).message})`);
    } finally {
      await ch.close().catch(() => {});
    }
  }
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    for (const q of t.queues) {
      try {
        await ch.assertQueue(q.name, { durable: true, arguments: q.arguments });
      } catch (e) {
        throw new Error(`queue ${q.name}: exists with other arguments than the topology declares ${JSON.stringify(q.arguments)}; ` +
          `migrate it to a new queue or delete it (${(e as Error).message})`);
      }
    }
    for (const b of t.bindings) await ch.bindQueue(b.queue, b.exchange, b.key);
  } finally {
    await ch.close().catch(() => {});
  }
}

/** Removes every exchange and queue of the topology (tests and the demo clean up with it). */
export async function deleteTopology(url: string, t: Topology): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    for (const q of t.queues) await ch.deleteQueue(q.name);
    for (const x of t.exchanges) await ch.deleteExchange(x.name);
    await ch.close();
  } finally {
    await conn.close();
  }
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
