//! "Did you mean": the closest known names to a misspelt one, by edit distance.

/// Longest word for which suggestions are computed.
const MAX_WORD: usize = 64;

/// Up to `limit` candidates close to `word`, closest first (ties keep the candidates' order).
pub fn closest<'a, I>(word: &str, candidates: I, limit: usize) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // Allow roughly one edit per three characters, at least one and at most four: close
    // enough to catch typos and plurals, far enough not to suggest unrelated names.
    let length = word.chars().count();
    // Edit distance is quadratic; nobody misspells a 100-character name into another.
    if length > MAX_WORD {
        return Vec::new();
    }
    let budget = (length / 3).clamp(1, 4);
    let lower = word.to_lowercase();
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .into_iter()
        .enumerate()
        // Lengths further apart than the budget cannot be within it: skip the distance.
        .filter(|(_, candidate)| candidate.chars().count().abs_diff(length) <= budget * 2)
        .filter_map(|(order, candidate)| {
            let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
            let prefix = candidate.starts_with(word) || word.starts_with(candidate);
            // Replacing every character is not a typo: `b` does not suggest `a`.
            let plausible = distance < word.chars().count();
            (plausible && (distance <= budget || (prefix && distance <= budget * 2)))
                .then_some((distance, order, candidate))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.2 == b.2);
    // Only the closest: `infra:23` suggests `infra:22` and `infra:24`, not `infra:40` too.
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|s| s.0 == best)
        .take(limit)
        .map(|(_, _, c)| c)
        .collect()
}

/// "did you mean `a`?" or "did you mean one of `a`, `b`?" for a help line.
pub fn did_you_mean(options: &[&str]) -> Option<String> {
    match options {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => {
            let list: Vec<String> = many.iter().map(|o| format!("`{o}`")).collect();
            Some(format!("did you mean one of {}?", list.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_plurals() {
        let fields = ["inputs", "outputs", "deps", "desc", "run", "requires_tools"];
        assert_eq!(closest("input", fields, 3), vec!["inputs"]);
        assert_eq!(closest("dep", fields, 3), vec!["deps"]);
        assert_eq!(closest("requires_tool", fields, 3), vec!["requires_tools"]);
        assert_eq!(closest("Inputs", fields, 3), vec!["inputs"]);
        assert!(closest("zzzzzz", fields, 3).is_empty());
        assert!(closest("b", ["a", "c"], 3).is_empty());
        let long = "a".repeat(65);
        assert!(closest(&long, [long.as_str()], 3).is_empty());
    }

    #[test]
    fn suggests_close_task_names_first() {
        let tasks = ["infra:22", "infra:24", "infra:40", "registry"];
        assert_eq!(closest("infra:23", tasks, 3), vec!["infra:22", "infra:24"]);
        assert_eq!(closest("regsitry", tasks, 3), vec!["registry"]);
    }

    #[test]
    fn phrases_one_or_many() {
        assert_eq!(did_you_mean(&[]), None);
        assert_eq!(did_you_mean(&["a"]).unwrap(), "did you mean `a`?");
        assert_eq!(
            did_you_mean(&["a", "b"]).unwrap(),
            "did you mean one of `a`, `b`?"
        );
    }
}
