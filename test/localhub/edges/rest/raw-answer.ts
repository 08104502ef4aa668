/** A REST answer whose body is not JSON (a cloud-to-device message a device receives), with its headers: 200. */
export class RawAnswer {
  constructor(
    readonly body: Buffer,
    readonly headers: Record<string, string>,
  ) {}
}
