/** Reads a JSON response body loosely typed, for assertions (tests check its shape with expect). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}
