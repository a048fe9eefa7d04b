/**
 * One Adam step on one parameter tensor (betas 0.9 and 0.999, epsilon 1e-8)
 * with L2 weight decay added to the gradient: the update rule of the cell
 * classifier and the map head. `step` counts from 1; gradients and moments
 * are float64, the weights float32. Plain arithmetic in a fixed order, so a
 * training run stays byte-for-byte reproducible.
 */
export function adamStep(
  weights: Float32Array,
  gradients: Float64Array,
  moment1: Float64Array,
  moment2: Float64Array,
  step: number,
  learningRate: number,
  weightDecay: number,
): void {
  const c1 = 1 - 0.9 ** step;
  const c2 = 1 - 0.999 ** step;
  for (let j = 0; j < weights.length; j++) {
    const g = (gradients[j] as number) + weightDecay * (weights[j] as number);
    moment1[j] = 0.9 * (moment1[j] as number) + 0.1 * g;
    moment2[j] = 0.999 * (moment2[j] as number) + 0.001 * g * g;
    weights[j] =
      (weights[j] as number) -
      (learningRate * ((moment1[j] as number) / c1)) /
        (Math.sqrt((moment2[j] as number) / c2) + 1e-8);
  }
}
