/** Little-endian float64s as numbers; a plain loop (Array.from on a typed array is ~10x slower). */
export function toNumbers(bytes: Uint8Array): number[] {
  // Copied out: the bytes may be a view, at an offset not divisible by 8, into a whole document.
  const values = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const numbers = new Array<number>(values.length);
  for (let index = 0; index < values.length; index++) numbers[index] = values[index];
  return numbers;
}
