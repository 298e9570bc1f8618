/** Minimal DER reader / writer (just enough for X.509, SPKI and PKCS#8 with GOST keys). */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface DerNode {
  /** full identifier octet (class | constructed | number), single-byte tags only */
  tag: number;
  /** offset of the identifier octet in the source buffer */
  start: number;
  /** offset of the first content octet */
  contentStart: number;
  /** offset just past the content */
  end: number;
  /** the whole TLV */
  raw: Buffer;
  /** the content octets */
  content: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  NumericString: 0x12,
  PrintableString: 0x13,
  TeletexString: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  UniversalString: 0x1c,
  BMPString: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Read one TLV at `offset`. */
export function readTlv(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let p = offset + 1;
  let len = buf[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported DER length encoding');
    if (p + n > buf.length) throw new DerError('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  const end = p + len;
  if (end > buf.length) throw new DerError('DER length exceeds the available data');
  return { tag, start: offset, contentStart: p, end, raw: buf.subarray(offset, end), content: buf.subarray(p, end) };
}

/** Children of a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  const buf = node.content;
  let p = 0;
  while (p < buf.length) {
    const c = readTlv(buf, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what}: missing`);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift()!;
  const a = first < 40 ? 0 : first < 80 ? 1 : 2;
  return [a, first - a * 40, ...parts].join('.');
}

export function decodeString(node: DerNode): string {
  const c = node.content;
  switch (node.tag) {
    case TAG.UTF8String:
      return c.toString('utf8');
    case TAG.PrintableString:
    case TAG.IA5String:
    case TAG.NumericString:
      return c.toString('latin1');
    case TAG.TeletexString:
      return c.toString('latin1');
    case TAG.BMPString: {
      const sw = Buffer.from(c);
      sw.swap16();
      return sw.toString('utf16le');
    }
    case TAG.UniversalString: {
      let s = '';
      for (let i = 0; i + 4 <= c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    default:
      return c.toString('hex');
  }
}

export function decodeTime(node: DerNode): Date {
  const s = node.content.toString('latin1');
  let m: RegExpMatchArray | null;
  if (node.tag === TAG.UTCTime) {
    m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/);
    if (!m) throw new DerError(`bad UTCTime ${s}`);
    const yy = Number(m[1]);
    const year = yy < 50 ? 2000 + yy : 1900 + yy;
    return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
  }
  if (node.tag === TAG.GeneralizedTime) {
    m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.(\d+))?Z$/);
    if (!m) throw new DerError(`bad GeneralizedTime ${s}`);
    const ms = m[7] ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), ms));
  }
  throw new DerError(`expected a time, got tag 0x${node.tag.toString(16)}`);
}

// ----------------------------------------------------------------------------- writer

function encodeLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  let v = len;
  while (v > 0) {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Buffer | Uint8Array): Buffer {
  const c = Buffer.from(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(c.length), c]);
}

export const der = {
  seq: (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items)),
  set: (...items: Buffer[]): Buffer => tlv(TAG.SET, Buffer.concat(items)),
  /** context-specific constructed [n] */
  ctx: (n: number, ...items: Buffer[]): Buffer => tlv(0xa0 | n, Buffer.concat(items)),
  null: (): Buffer => Buffer.from([0x05, 0x00]),
  bool: (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0x00])),
  octets: (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b),
  bits: (b: Uint8Array, unused = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unused]), Buffer.from(b)])),
  utf8: (s: string): Buffer => tlv(TAG.UTF8String, Buffer.from(s, 'utf8')),
  printable: (s: string): Buffer => tlv(TAG.PrintableString, Buffer.from(s, 'latin1')),
  /** unsigned big-endian magnitude → DER INTEGER */
  uint: (bytes: Uint8Array): Buffer => {
    let b = Buffer.from(bytes);
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    b = b.subarray(i);
    if (b.length === 0) b = Buffer.from([0]);
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return tlv(TAG.INTEGER, b);
  },
  small: (n: number): Buffer => der.uint(Buffer.from([n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])),
  oid: (oid: string): Buffer => {
    const parts = oid.split('.').map(Number);
    if (parts.length < 2 || parts.some((x) => !Number.isInteger(x) || x < 0)) throw new DerError(`bad OID ${oid}`);
    const arcs = [parts[0]! * 40 + parts[1]!, ...parts.slice(2)];
    const out: number[] = [];
    for (const arc of arcs) {
      const tmp: number[] = [];
      let v = arc;
      do {
        tmp.unshift(v & 0x7f);
        v = Math.floor(v / 128);
      } while (v > 0);
      for (let i = 0; i < tmp.length - 1; i++) tmp[i]! |= 0x80;
      out.push(...tmp);
    }
    return tlv(TAG.OID, Buffer.from(out));
  },
  time: (d: Date): Buffer => {
    const y = d.getUTCFullYear();
    const p2 = (n: number): string => String(n).padStart(2, '0');
    const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
    if (y >= 1950 && y < 2050) return tlv(TAG.UTCTime, Buffer.from(`${p2(y % 100)}${rest}`, 'latin1'));
    return tlv(TAG.GeneralizedTime, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'latin1'));
  },
};

// ----------------------------------------------------------------------------- PEM

export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  const out: { label: string; der: Buffer }[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const body = m[2]!.replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\s+/g, '');
    out.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return out;
}

export function toPem(label: string, data: Buffer): string {
  const b64 = data.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
