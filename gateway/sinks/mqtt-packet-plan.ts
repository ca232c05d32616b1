/**
 * Splitting a batch into MQTT publishes that each fit the broker's maximum packet size.
 *
 * Why: a managed broker refuses any packet over its limit by closing the connection (MQTT v5
 * §3.1.2.11.4; mosquitto's `max_packet_size`, AWS IoT Core's 128 KB). The client then reconnects
 * and resends the same QoS 1 publish from its session, which is refused again — forever, while
 * the rows behind it wait. So a batch is cut, before it is sealed, into parts whose whole PUBLISH
 * packet (fixed header, topic, packet id, properties and the JWE) stays within the limit, and a
 * record that cannot fit any packet on its own is refused here, permanently, so it goes to the dead
 * letters with the reason instead of blocking its partition.
 *
 * Sizes are computed, not guessed: the envelope's JSON is known byte for byte, AES-GCM keeps the
 * plaintext length, base64url adds a third, and the JWE's other parts (header, wrapped key, IV,
 * tag) have a fixed length for a given key — measured once by sealing an
 * empty plaintext (`jweOverhead`). The sink still checks each sealed part's real size before it
 * publishes it.
 */

/** The MQTT v5 limit on any packet when the broker announces none (§1.5.5: 268,435,455 bytes of remaining length). */
export const MQTT_MAX_REMAINING_LENGTH = 268_435_455;

/** Bytes of the variable byte integer that encodes `n` (MQTT v5 §1.5.5). */
export function varIntBytes(n: number): number {
  if (n < 128) return 1;
  if (n < 16_384) return 2;
  if (n < 2_097_152) return 3;
  return 4;
}

/** Length of base64url text without padding for `n` bytes (RFC 7515 §2). */
export function base64urlLength(n: number): number {
  return Math.ceil((n * 4) / 3);
}

/** What a PUBLISH carries besides its payload: topic and properties. */
export interface PublishShape {
  topic: string;
  contentType?: string;
  userProperties?: Record<string, string>;
}

/**
 * Bytes of a whole MQTT v5 PUBLISH packet at QoS 1 with this topic and properties and a payload of
 * `payloadBytes` (§3.3: fixed header, topic name, packet identifier, property length, properties,
 * payload) — the figure the broker compares with its Maximum Packet Size.
 */
export function publishPacketBytes(shape: PublishShape, payloadBytes: number): number {
  let props = 0;
  if (shape.contentType !== undefined) props += 1 + 2 + Buffer.byteLength(shape.contentType);
  for (const [k, v] of Object.entries(shape.userProperties ?? {})) props += 1 + 2 + Buffer.byteLength(k) + 2 + Buffer.byteLength(v);
  const remaining = 2 + Buffer.byteLength(shape.topic) + 2 + varIntBytes(props) + props + payloadBytes;
  return 1 + varIntBytes(remaining) + remaining;
}

/** One publish of a split batch: indexes into the batch's records, in order. */
export interface PacketPart {
  indexes: number[];
  plaintextBytes: number;
}

export interface PacketPlan {
  parts: PacketPart[];
  /** Records too large for any packet: index and the size of a packet holding only it. */
  oversized: Array<{ index: number; packetBytes: number }>;
  /** Size of a packet holding an envelope with no record: the floor of any part. */
  emptyPacketBytes: number;
}

export interface PlanInput {
  /** Byte length of each record's JSON text, in batch order. */
  recordBytes: readonly number[];
  /** Byte length of the envelope's JSON with no records (`{"batchId":…,"records":[]}`). */
  emptyEnvelopeBytes: number;
  /** Length of the JWE of an empty plaintext (header, wrapped key, IV, tag and the dots). */
  jweOverhead: number;
  shape: PublishShape;
  maxPacketBytes: number;
}

/** Packet size of a part whose envelope plaintext is `plaintextBytes`. */
function packetFor(i: PlanInput, plaintextBytes: number): number {
  return publishPacketBytes(i.shape, i.jweOverhead + base64urlLength(plaintextBytes));
}

/**
 * Packs the records, in order, into as few parts as fit (greedy: a record joins the current part
 * while the packet stays within the limit). Order is kept across parts, so one patient's records
 * stay in order whatever the split.
 */
export function planPackets(i: PlanInput): PacketPlan {
  const parts: PacketPart[] = [];
  const oversized: PacketPlan['oversized'] = [];
  let cur: PacketPart | undefined;
  for (let k = 0; k < i.recordBytes.length; k++) {
    const len = i.recordBytes[k];
    if (cur) {
      const next = cur.plaintextBytes + 1 + len;
      if (packetFor(i, next) <= i.maxPacketBytes) {
        cur.indexes.push(k);
        cur.plaintextBytes = next;
        continue;
      }
    }
    const alone = i.emptyEnvelopeBytes + len;
    const aloneBytes = packetFor(i, alone);
    if (aloneBytes > i.maxPacketBytes) {
      oversized.push({ index: k, packetBytes: aloneBytes });
      continue;
    }
    cur = { indexes: [k], plaintextBytes: alone };
    parts.push(cur);
  }
  return { parts, oversized, emptyPacketBytes: packetFor(i, i.emptyEnvelopeBytes) };
}
