//! Causes of drift in words: a few for summaries and `plan`, a line each for `why`.

use crate::fingerprint::{Change, EnvValue, ProbeState};
use crate::plan::Cause;

/// A cause in a few words ("input changed: a.txt").
pub fn short(cause: &Cause) -> String {
    match cause {
        Cause::NeverRun => "never run".into(),
        Cause::Failed {
            timed_out: true, ..
        } => "last attempt timed out".into(),
        Cause::Failed {
            exit_code: Some(code),
            ..
        } => format!("last attempt failed (exit {code})"),
        Cause::Failed { .. } => "last attempt failed".into(),
        Cause::Interrupted { .. } => "last attempt was interrupted".into(),
        Cause::Forced => "forced".into(),
        Cause::DepPending { dep, certain: true } => format!("{dep} will run"),
        Cause::DepPending {
            dep,
            certain: false,
        } => format!("if {dep}'s output changes"),
        Cause::Changed(change) => match change {
            Change::Command { .. } => "command changed".into(),
            Change::Env { name, .. } => format!("env {name} changed"),
            Change::InputAdded { path, .. } => format!("input added: {path}"),
            Change::InputRemoved { path, .. } => format!("input removed: {path}"),
            Change::InputChanged { path, .. } => format!("input changed: {path}"),
            Change::OutputMissing { path } => format!("output missing: {path}"),
            Change::OutputChanged { path } => format!("output changed: {path}"),
            Change::OutputAdded { path } => format!("new output: {path}"),
            Change::Probe { .. } => "probe changed".into(),
            Change::ProbeTimedOut { .. } => "probe timed out".into(),
            Change::Dep { name } => format!("{name} changed"),
        },
    }
}

/// The first cause in a few words, and how many more there are.
pub fn summary(causes: &[Cause]) -> String {
    // After a failed or interrupted attempt, a change is most likely what the user did
    // about it (or, in `watch`, what restarted it): that is named first.
    let lead = match causes.first() {
        Some(Cause::Failed { .. } | Cause::Interrupted { .. }) => causes
            .iter()
            .find(|c| matches!(c, Cause::Changed(_)))
            .or(causes.first()),
        first => first,
    };
    match (lead, causes.len()) {
        (None, _) => String::new(),
        (Some(one), 1) => short(one),
        (Some(lead), n) => format!("{} (+{} more)", short(lead), n - 1),
    }
}

/// How `why` shows an env value: in the clear only when it is not secret.
pub fn env_value(value: Option<&EnvValue>) -> String {
    match value {
        None | Some(EnvValue::Unset) => "(unset)".into(),
        Some(EnvValue::Plain(v)) => v.clone(),
        Some(EnvValue::Hidden(_)) => "(value hidden)".into(),
    }
}

/// A probe state in a line: its output (shortened) and exit status.
pub fn probe(state: Option<&ProbeState>) -> String {
    match state {
        None => "(no probe)".into(),
        Some(ProbeState::Exited {
            status, preview, ..
        }) => {
            let text = crate::fingerprint::shorten(preview.trim_end(), 60);
            let text = if text.is_empty() {
                "(no output)".to_string()
            } else {
                text.replace('\n', "⏎")
            };
            format!("{text} (exit {status})")
        }
        Some(ProbeState::TimedOut { after_ms }) => {
            format!(
                "timed out after {}",
                crate::duration::format(std::time::Duration::from_millis(*after_ms))
            )
        }
        Some(ProbeState::Failed { message }) => format!("could not run: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Change;

    #[test]
    fn a_summary_names_a_change_before_the_last_attempt_that_failed() {
        let changed = Cause::Changed(Change::InputChanged {
            path: "src/s.txt".into(),
            implicit: false,
            old: [0; 32],
            new: [1; 32],
        });
        let interrupted = Cause::Interrupted { log: None };
        assert_eq!(
            summary(&[interrupted.clone(), changed.clone()]),
            "input changed: src/s.txt (+1 more)"
        );
        assert_eq!(
            summary(std::slice::from_ref(&interrupted)),
            short(&interrupted)
        );
        // Otherwise the first cause leads.
        assert_eq!(summary(&[Cause::NeverRun, changed]), "never run (+1 more)");
        assert_eq!(summary(&[]), "");
    }
}
