//! Progress on the terminal (an indicatif bar with step, smoothed loss, img/s, elapsed, ETA)
//! and in `RUN/train.log` (a line every `log_every` steps, for non-TTY use and later reading).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::report::LossSmoother;

/// Reports training progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    log: File,
    started: Instant,
    first_step: u64,
    images: u64,
    smoothed_loss: Option<f32>,
    smoother: LossSmoother,
}

impl Progress {
    /// Starts reporting at `step`; the bar's length is `max_steps` when known.
    pub fn new(show_bar: bool, step: u64, max_steps: Option<u64>, run: &Path) -> Result<Self> {
        let log_path = run.join("train.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let bar = show_bar.then(|| {
            let bar = match max_steps {
                Some(max) => ProgressBar::new(max),
                None => ProgressBar::new_spinner(),
            };
            let template = if max_steps.is_some() {
                "{elapsed_precise} [{bar:30}] step {pos}/{len} {msg} ETA {eta}"
            } else {
                "{elapsed_precise} {spinner} step {pos} {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(step);
            bar.reset_eta();
            bar
        });
        let mut progress = Self {
            bar,
            log,
            started: Instant::now(),
            first_step: step,
            images: 0,
            smoothed_loss: None,
            smoother: LossSmoother::default(),
        };
        progress.line(&format!("start at step {step}"))?;
        Ok(progress)
    }

    /// Records a finished step; writes a log line when `log_line` is set.
    pub fn step(&mut self, step: u64, loss: f32, batch_size: usize, log_line: bool) -> Result<()> {
        self.images += batch_size as u64;
        let smoothed = self.smoother.push(loss);
        self.smoothed_loss = Some(smoothed);
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.images as f64 / seconds;
        let message = format!("loss {smoothed:.4} | {rate:.1} img/s");
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            bar.set_message(message.clone());
        }
        if log_line {
            let line = format!("step {step} loss {loss:.5} smoothed {smoothed:.5} {rate:.1} img/s");
            self.line(&line)?;
            if self.bar.is_none() {
                println!("{line}");
            }
        }
        Ok(())
    }

    /// Ends the bar and logs why training stopped.
    pub fn finish(&mut self, reason: &str) -> Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(format!("stopped: {reason}"));
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let loss = self.smoothed_loss.map_or("-".to_string(), |loss| format!("{loss:.5}"));
        self.line(&format!(
            "stop: {reason}; {} images in {seconds:.1} s since step {} ({:.1} img/s), smoothed loss {loss}",
            self.images,
            self.first_step,
            self.images as f64 / seconds.max(1e-9)
        ))
    }

    /// Clears the bar after an error so the message is readable.
    pub fn abandon(&mut self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    fn line(&mut self, text: &str) -> Result<()> {
        let stamp = self.started.elapsed().as_secs_f64();
        writeln!(self.log, "[{stamp:9.1}s] {text}").context("writing train.log")
    }
}
