//! The live view of `run` on a terminal (SPEC §6): one line per running task (spinner,
//! name, elapsed / expected time, its latest output line) above a progress bar over the
//! whole run. What stays on screen is printed above the bars: a line per finished task, and
//! a failed task's last lines of output.
//!
//! indicatif draws; it redraws itself from its own tick threads, at most 20 times a second.
//! The [`Reporter`] methods are called from the scheduler's thread. Colour is our own ANSI
//! (never console's global switch), so `--color` and `NO_COLOR` decide alone.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::graph::Task;
use crate::plan::Cause;
use crate::process::Stream;
use crate::report::cause;
use crate::report::run::{failure, seconds};
use crate::work::{Report, Reporter, TaskResult};

/// How many lines of a failed task's output are shown when it fails.
pub const TAIL: usize = 40;

/// How often spinners and clocks move.
const TICK: Duration = Duration::from_millis(100);

/// The widest a task name column gets; longer names are cut in the running lines.
const MAX_NAME: usize = 40;

/// The most of one output line that is kept (for the tail and the running line).
const MAX_LINE: usize = 2000;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The live terminal view.
pub struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, Running>,
    /// Counts the tasks that started, to give lines to hidden ones in the order they began.
    started: u64,
    /// How long each task's last success took, by task name.
    expected: HashMap<String, Duration>,
    name_width: usize,
    color: bool,
    failed: usize,
    /// The bars are gone (after [`Live::finish`]).
    finished: bool,
    /// Whether we turned the terminal's `ECHOCTL` off (see [`quiet_control_echo`]).
    echoctl_off: bool,
}

/// A task whose command is running.
struct Running {
    /// Its line on screen; `None` while the terminal has no room for it (more tasks run
    /// than it has lines). It gets one when a line frees up.
    bar: Option<ProgressBar>,
    order: u64,
    began: Instant,
    /// Why it runs, shown until it prints something.
    why: String,
    /// Its last [`TAIL`] lines of output, and how many came before them.
    tail: VecDeque<String>,
    dropped: usize,
}

impl Running {
    /// What its line shows: its last line with something on it, else why it runs.
    fn message(&self) -> String {
        match self.tail.iter().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => line.clone(),
            None => self.why.clone(),
        }
    }
}

impl Live {
    /// A view over a run of `total` tasks. `names` are the tasks' names (for the width of
    /// the name column); `expected` how long each took last time.
    pub fn new<'a>(
        total: usize,
        names: impl IntoIterator<Item = &'a str>,
        expected: HashMap<String, Duration>,
        color: bool,
    ) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let name_width = names
            .into_iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .min(MAX_NAME)
            .min(terminal_size().0 / 3);
        let overall = multi.add(
            ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden())
                .with_style(overall_style(color)),
        );
        overall.enable_steady_tick(TICK);
        Live {
            multi,
            overall,
            running: HashMap::new(),
            started: 0,
            expected,
            name_width,
            color,
            failed: 0,
            finished: false,
            echoctl_off: quiet_control_echo(),
        }
    }

    /// Removes the bars, leaving only the permanent lines. Called once the run is over.
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        for (_, running) in self.running.drain() {
            if let Some(bar) = running.bar {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
        if self.echoctl_off {
            restore_control_echo();
        }
    }

    fn print(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    fn paint(&self, code: &str, text: &str) -> String {
        paint(self.color, code, text)
    }

    /// Gives lines to hidden running tasks, oldest first, while the terminal has room: one
    /// line per task, the overall bar, and a spare line for the cursor.
    fn show_what_fits(&mut self) {
        let room = terminal_size().1.saturating_sub(2).max(1);
        let mut shown = self.running.values().filter(|r| r.bar.is_some()).count();
        while shown < room {
            let Some((name, running)) = self
                .running
                .iter_mut()
                .filter(|(_, r)| r.bar.is_none())
                .min_by_key(|(_, r)| r.order)
            else {
                break;
            };
            let expected = self.expected.get(name).copied();
            // The expected column is kept only when some task has a past run to go by.
            let reserve = !self.expected.is_empty();
            // Built hidden and complete, so nothing is drawn until it is among the bars.
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
                .with_style(task_style(expected, reserve, self.color))
                .with_prefix(pad(name, self.name_width))
                .with_message(running.message())
                .with_elapsed(running.began.elapsed());
            let bar = self.multi.insert_before(&self.overall, bar);
            bar.enable_steady_tick(TICK);
            running.bar = Some(bar);
            shown += 1;
        }
    }

    /// The counts after the overall bar: "2 running · 1 failed".
    fn update_status(&self) {
        let mut status = format!("{} running", self.running.len());
        let hidden = self.running.values().filter(|r| r.bar.is_none()).count();
        if hidden > 0 {
            let _ = write!(status, " ({hidden} not shown)");
        }
        if self.failed > 0 {
            let failed = format!("{} failed", self.failed);
            status.push_str(" · ");
            status.push_str(&self.paint(RED, &failed));
        }
        self.overall.set_message(status);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Reporter for Live {
    fn started(&mut self, task: &Task, causes: &[Cause]) {
        self.started += 1;
        let why = self.paint(DIM, &format!("({})", cause::summary(causes)));
        let fresh = Running {
            bar: None,
            order: self.started,
            began: Instant::now(),
            why,
            tail: VecDeque::with_capacity(TAIL),
            dropped: 0,
        };
        // The runner starts a task once (retries happen inside); should it start again,
        // the line starts afresh and the output so far is kept.
        if let Some(old) = self.running.insert(task.name.clone(), fresh) {
            if let Some(bar) = old.bar {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            if let Some(new) = self.running.get_mut(&task.name) {
                new.tail = old.tail;
                new.dropped = old.dropped;
            }
        }
        self.show_what_fits();
        self.update_status();
    }

    fn line(&mut self, task: &Task, _stream: Stream, text: &str) {
        let Some(running) = self.running.get_mut(&task.name) else {
            return;
        };
        let text = clean(text);
        if running.tail.len() == TAIL {
            running.tail.pop_front();
            running.dropped += 1;
        }
        // The line shows the last output line that has something to show.
        if let Some(bar) = &running.bar
            && !text.trim().is_empty()
        {
            bar.set_message(text.clone());
        }
        running.tail.push_back(text);
    }

    fn finished(&mut self, task: &Task, report: &Report) {
        let running = self.running.remove(&task.name);
        if let Some(bar) = running.as_ref().and_then(|r| r.bar.as_ref()) {
            bar.finish_and_clear();
            self.multi.remove(bar);
        }
        self.show_what_fits();
        self.overall.inc(1);
        let mut text = String::new();
        if let Some(line) = failure(task, report) {
            self.failed += 1;
            let _ = write!(text, "{}", self.paint(RED, &line));
            if let Some(running) = &running {
                let gutter = self.paint(DIM, "│");
                if running.dropped > 0 {
                    let earlier = format!(
                        "… {} earlier line{} in the log",
                        running.dropped,
                        if running.dropped == 1 { "" } else { "s" }
                    );
                    let _ = write!(text, "\n  {gutter} {}", self.paint(DIM, &earlier));
                }
                for line in &running.tail {
                    let _ = write!(text, "\n  {gutter} {line}");
                }
            }
            if let TaskResult::TimedOut { log: Some(log), .. } = &report.result {
                let _ = write!(text, "\n  log: {log}");
            }
        } else {
            match &report.result {
                TaskResult::Ran => {
                    let _ = write!(
                        text,
                        "{} {} {}",
                        self.paint(GREEN, "✔"),
                        task.name,
                        self.paint(DIM, &format!("({})", seconds(report.duration)))
                    );
                }
                TaskResult::Interrupted { .. } if running.is_some() => {
                    let _ = write!(
                        text,
                        "{} {} interrupted after {}",
                        self.paint(YELLOW, "■"),
                        task.name,
                        seconds(report.duration)
                    );
                }
                // Up to date, skipped and cancelled tasks are in the summary.
                _ => {}
            }
        }
        if !text.is_empty() {
            self.print(&text);
        }
        self.update_status();
    }

    fn note(&mut self, text: &str) {
        self.print(&format!("devgraph: {}", clean(text)));
    }
}

/// Stops the terminal from echoing Ctrl-C as `^C` while the bars are drawn, and says
/// whether it did.
///
/// indicatif pads every line to the full width and leaves the cursor in the last column,
/// so the terminal's next character wraps to a new line. The kernel echoes `^C` there the
/// moment Ctrl-C is pressed, the bars move down a line, and the next redraw leaves their
/// top line behind on the screen. Without `ECHOCTL` the kernel echoes the bare control
/// character, which a terminal does not print. Only done in the foreground (changing the
/// terminal from the background would stop us with SIGTTOU); undone by
/// [`restore_control_echo`]. If devgraph is killed outright, the only trace is that Ctrl-C
/// no longer shows as `^C` in that terminal.
fn quiet_control_echo() -> bool {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcgetpgrp, tcsetattr};
    let out = std::io::stdout();
    if tcgetpgrp(&out).ok() != Some(rustix::process::getpgrp()) {
        return false;
    }
    let Ok(mut modes) = tcgetattr(&out) else {
        return false;
    };
    if !modes.local_modes.contains(LocalModes::ECHOCTL) {
        return false;
    }
    modes.local_modes.remove(LocalModes::ECHOCTL);
    tcsetattr(&out, OptionalActions::Now, &modes).is_ok()
}

/// Turns `ECHOCTL` back on (see [`quiet_control_echo`]).
fn restore_control_echo() {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let out = std::io::stdout();
    if let Ok(mut modes) = tcgetattr(&out) {
        modes.local_modes.insert(LocalModes::ECHOCTL);
        let _ = tcsetattr(&out, OptionalActions::Now, &modes);
    }
}

/// The terminal's width and height (80 by 24 when it cannot be told).
fn terminal_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(size) if size.ws_col > 0 && size.ws_row > 0 => (size.ws_col.into(), size.ws_row.into()),
        _ => (80, 24),
    }
}

const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";
const DIM: &str = "2";

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `name` cut or padded to `width` columns.
fn pad(name: &str, width: usize) -> String {
    let count = name.chars().count();
    if count > width {
        let mut cut: String = name.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        format!("{name}{}", " ".repeat(width - count))
    }
}

/// A clock that keeps its width: `3.2s`, `1m05s`, `1h02m`.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs / 60 % 60)
    }
}

/// `⠹ name   3.2s / 10.0s  latest output line`, cut to the terminal's width.
fn task_style(expected: Option<Duration>, reserve: bool, color: bool) -> ProgressStyle {
    ProgressStyle::with_template("{spin} {prefix}  {time}  {wide_msg}")
        .unwrap_or_else(|e| unreachable!("BUG: live view template: {e}"))
        .with_key(
            "spin",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let frame = (state.elapsed().as_millis() / TICK.as_millis()) as usize;
                let _ = w.write_str(&paint(color, CYAN, SPINNER[frame % SPINNER.len()]));
            },
        )
        .with_key(
            "time",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let elapsed = state.elapsed();
                let now = format!("{:>6}", clock(elapsed));
                let _ = match expected {
                    Some(expected) => {
                        let late = elapsed > expected;
                        let now = if late {
                            paint(color, YELLOW, &now)
                        } else {
                            now
                        };
                        let total = format!("/ {:<6}", clock(expected));
                        write!(w, "{now} {}", paint(color, DIM, &total))
                    }
                    None if reserve => write!(w, "{now} {:8}", ""),
                    None => w.write_str(&now),
                };
            },
        )
}

/// `━━━━━━━━╸────────  3/10 tasks · 12.3s · 2 running · 1 failed`.
fn overall_style(color: bool) -> ProgressStyle {
    ProgressStyle::with_template("{progress} {pos}/{len} tasks · {clock} · {msg}")
        .unwrap_or_else(|e| unreachable!("BUG: live view template: {e}"))
        .with_key(
            "progress",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                const WIDTH: usize = 30;
                let filled = ((state.fraction() as f64) * WIDTH as f64).floor() as usize;
                let filled = filled.min(WIDTH);
                let mut done = "━".repeat(filled);
                if filled < WIDTH && filled > 0 {
                    done.push('╸');
                }
                let rest_len = WIDTH - done.chars().count();
                let rest = "─".repeat(rest_len);
                let _ = write!(
                    w,
                    "{}{}",
                    paint(color, GREEN, &done),
                    paint(color, DIM, &rest)
                );
            },
        )
        .with_key(
            "clock",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&clock(state.elapsed()));
            },
        )
}

/// A line of task output as a terminal would leave it, made safe to draw among the bars:
/// only what follows the last carriage return, escape sequences removed, tabs expanded,
/// other control characters dropped, and at most [`MAX_LINE`] characters.
pub fn clean(text: &str) -> String {
    let text = text
        .trim_end_matches('\r')
        .rsplit('\r')
        .next()
        .unwrap_or_default();
    let mut out = String::with_capacity(text.len().min(MAX_LINE));
    let mut chars = text.chars().peekable();
    let mut column = 0;
    while let Some(c) = chars.next() {
        if column >= MAX_LINE {
            break;
        }
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS and friends: up to BEL or ESC \.
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => {
                let spaces = 8 - column % 8;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            }
            c if c.is_control() => {}
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_leaves_what_a_terminal_shows() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("\x1b[1;31merror\x1b[0m: bad"), "error: bad");
        assert_eq!(clean(" 10%\r 50%\r100%"), "100%");
        assert_eq!(clean("done\r"), "done");
        assert_eq!(clean("a\tb"), "a       b");
        assert_eq!(clean("\x1b]0;title\x07text"), "text");
        assert_eq!(clean("\x1b]8;;http://x\x1b\\link"), "link");
        assert_eq!(clean("bell\x07 and \x08back"), "bell and back");
        assert_eq!(clean(&"x".repeat(5000)).len(), MAX_LINE);
    }

    #[test]
    fn clocks_keep_their_width() {
        assert_eq!(clock(Duration::from_millis(3200)), "3.2s");
        assert_eq!(clock(Duration::from_secs(65)), "1m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn names_are_padded_or_cut() {
        assert_eq!(pad("api", 5), "api  ");
        assert_eq!(pad("infra:24", 5), "infr…");
    }
}
