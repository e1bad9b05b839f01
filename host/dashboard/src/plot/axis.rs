//! Axis ticks at round numbers.

/// Ticks covering `0..=max`: about `count` multiples of 1, 2 or 5 times a
/// power of ten, from 0 up to the first at or past `max` (a `max` of 0 or
/// less gives `[0, 1]`).
pub(super) fn ticks(max: f64, count: usize) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 {
        return vec![0.0, 1.0];
    }
    let raw = max / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power);
    let steps = (max / step).ceil().max(1.0) as usize;
    (0..=steps).map(|i| i as f64 * step).collect()
}

/// A tick's label: no decimals unless the step needs them.
pub(super) fn label(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(9.3, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 5), vec![0.0, 1.0]);
        assert_eq!(ticks(100.0, 4), vec![0.0, 50.0, 100.0]);
        let small = ticks(0.034, 3);
        assert_eq!(small.len(), 3);
        assert_eq!(label(small[2], small[1]), "0.04");
        assert_eq!(label(250.0, 50.0), "250");
    }
}
