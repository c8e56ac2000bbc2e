//! Analysis of a learned policy: ranked op preferences and per-sub-policy summaries, as data
//! (for plots) and as text (what the datarax guide prints).
use std::fmt::Write as _;

use dada_ops::OpSet;
use serde::{Deserialize, Serialize};

use crate::PolicyFile;

/// How much a policy uses one op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpPreference {
    /// The op's snake_case name.
    pub op: String,
    /// Its share of the op choices (paper: selection weight of the sub-policies holding it,
    /// per slot; tutorial: mean softmax weight over all slots). Sums to 1 over the ops.
    pub weight: f64,
    /// Expected number of applications per image slot: `weight` times the apply probability.
    pub expected_use: f64,
    /// Weight-averaged magnitude in [0, 1].
    pub magnitude: f64,
}

/// One sub-policy of a policy file, ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubPolicySummary {
    /// 1-based rank by weight.
    pub rank: usize,
    /// Weight.
    pub weight: f64,
    /// `(op, probability, magnitude)` per op.
    pub ops: Vec<(String, f64, f64)>,
}

/// Ranked op preferences of a policy file: each sub-policy's weight shared among its ops.
pub fn file_op_preferences(file: &PolicyFile) -> Vec<OpPreference> {
    let mut names: Vec<String> = Vec::new();
    let total: f64 = file.sub_policies.iter().map(|s| s.weight).sum::<f64>().max(f64::MIN_POSITIVE);
    let (mut weight, mut used, mut mag): (Vec<f64>, Vec<f64>, Vec<f64>) = (vec![], vec![], vec![]);
    for sp in &file.sub_policies {
        let share = sp.weight / total / sp.ops.len().max(1) as f64;
        for e in &sp.ops {
            let i = match names.iter().position(|n| *n == e.op) {
                Some(i) => i,
                None => {
                    names.push(e.op.clone());
                    weight.push(0.0);
                    used.push(0.0);
                    mag.push(0.0);
                    names.len() - 1
                }
            };
            weight[i] += share;
            used[i] += share * e.probability;
            mag[i] += share * e.magnitude;
        }
    }
    rank_named(names, weight, used, mag)
}

/// The sub-policies of a file, ranked by weight.
pub fn sub_policy_summaries(file: &PolicyFile) -> Vec<SubPolicySummary> {
    let ranked = file.top_k(file.sub_policies.len());
    ranked
        .sub_policies
        .iter()
        .enumerate()
        .map(|(i, sp)| SubPolicySummary {
            rank: i + 1,
            weight: sp.weight,
            ops: sp.ops.iter().map(|e| (e.op.clone(), e.probability, e.magnitude)).collect(),
        })
        .collect()
}

/// Op preferences as a text table with a bar per op.
pub fn preferences_text(prefs: &[OpPreference]) -> String {
    let max = prefs.iter().map(|p| p.weight).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut s = String::from("rank  op              weight   use      magnitude\n");
    for (i, p) in prefs.iter().enumerate() {
        let bar = "#".repeat(((p.weight / max) * 30.0).round() as usize);
        let _ = writeln!(s, "{:>4}  {:<14}  {:.4}   {:.4}   {:.3}      {bar}", i + 1, p.op, p.weight, p.expected_use, p.magnitude);
    }
    s
}

/// The top `n` sub-policies as text: `rank weight  op(p=.., m=..) -> op(p=.., m=..)`.
pub fn sub_policies_text(file: &PolicyFile, n: usize) -> String {
    let mut s = String::new();
    for sp in sub_policy_summaries(file).into_iter().take(n) {
        let ops: Vec<String> = sp.ops.iter().map(|(op, p, m)| format!("{op}(p={p:.2}, m={m:.2})")).collect();
        let _ = writeln!(s, "{:>3}  {:.4}  {}", sp.rank, sp.weight, ops.join(" -> "));
    }
    s
}

/// Builds ranked preferences from per-op sums in `ops` order.
pub(crate) fn rank(ops: &OpSet, weight: Vec<f64>, used: Vec<f64>, mag: Vec<f64>) -> Vec<OpPreference> {
    rank_named(ops.names().iter().map(|n| n.to_string()).collect(), weight, used, mag)
}

fn rank_named(names: Vec<String>, weight: Vec<f64>, used: Vec<f64>, mag: Vec<f64>) -> Vec<OpPreference> {
    let mut out: Vec<OpPreference> = names
        .into_iter()
        .enumerate()
        .map(|(i, op)| OpPreference {
            op,
            weight: weight[i],
            expected_use: used[i],
            magnitude: if weight[i] > 0.0 { mag[i] / weight[i] } else { 0.0 },
        })
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(b.expected_use.total_cmp(&a.expected_use)));
    out
}
