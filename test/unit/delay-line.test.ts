/** The latency fault's queue: a later packet never overtakes an earlier one, and the queue is bounded. */
import { DelayLine, MAX_DELAYED_PACKETS } from "../localhub/edges/mqtt/delay-line";

it("keeps the order when the latency ends while packets still wait", async () => {
  const line = new DelayLine();
  const order: number[] = [];
  line.push(50, () => order.push(1));
  line.push(0, () => order.push(2)); // no latency any more, but 1 still waits: 2 waits behind it
  expect(order).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 80));
  expect(order).toEqual([1, 2]);
  line.push(0, () => order.push(3));
  expect(order).toEqual([1, 2, 3]);
});

it("refuses more than MAX_DELAYED_PACKETS waiting at once", () => {
  const line = new DelayLine();
  for (let i = 0; i < MAX_DELAYED_PACKETS; i++) expect(line.push(1000, () => {})).toBe(true);
  expect(line.push(1000, () => {})).toBe(false);
  line.clear();
});
