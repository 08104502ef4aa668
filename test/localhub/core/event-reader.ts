/**
 * Reading the telemetry log from a position, for the edges that serve Event Hubs readers: where a reader starts
 * (earliest, latest, an offset, a sequence number or an enqueued time) and a cursor over one partition.
 */
import type { LoggedEvent, Partition } from "../store/event-log";

/** Where a reader starts, as an Event Hubs client names it (the AMQP edge parses its selector filter into this). */
export type EventPosition =
  | { from: "earliest" }
  | { from: "latest" }
  | { from: "offset" | "sequenceNumber" | "enqueuedTime"; value: number; inclusive: boolean };

const FIELD = { offset: "offset", sequenceNumber: "sequenceNumber", enqueuedTime: "time" } as const;

/** The first sequence number a reader from `position` gets (the next one to be written when none is stored yet). */
export function firstSequenceOf(partition: Partition, position: EventPosition): number {
  if (position.from === "earliest") return partition.info().beginSequenceNumber;
  if (position.from === "latest") return partition.endSequence;
  const { value, inclusive } = position;
  const key = FIELD[position.from];
  return partition.firstAfter((entry) => (inclusive ? entry[key] >= value : entry[key] > value));
}

/** One reader's place in one partition: each read() returns the next durable event, or undefined at the end. */
export class PartitionReader {
  constructor(
    private readonly partition: Partition,
    /** The sequence number of the next event this reader gets. */
    public position: number,
  ) {}

  get partitionId(): number {
    return this.partition.id;
  }

  /** True while durable events remain ahead of the reader. */
  get hasNext(): boolean {
    return this.position < this.partition.endSequence;
  }

  read(): LoggedEvent | undefined {
    while (this.hasNext) {
      const event = this.partition.event(this.position);
      if (event) {
        this.position++;
        return event;
      }
      // Retention removed it while the reader was behind: continue at the oldest event still kept.
      this.position = Math.max(this.position + 1, this.partition.info().beginSequenceNumber);
    }
    return undefined;
  }
}
