//! Summary statistics shared by the benchmark programs: nanoseconds per
//! operation, one value per repetition.

pub fn median(ns: &[f64]) -> f64 {
    let mut v = ns.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

pub fn min(ns: &[f64]) -> f64 {
    ns.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(ns: &[f64]) -> f64 {
    ns.iter().copied().fold(0.0, f64::max)
}
