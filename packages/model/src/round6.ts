/** A number to six significant digits, as the model's contract records its figures. */
export function round6(value: number): number {
  return Number(value.toPrecision(6));
}
