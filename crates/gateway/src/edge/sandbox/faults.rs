//! Faults on demand: `--faults "rate_limit=0.05,nonce=0.02,unavailable=0.01,latency=20ms..200ms,reset=0.01"`
//! with `--seed N`, and per request `X-Sandbox-Fault: NAME`. Injected answers are the live
//! service's exact bodies and headers; a request answered with an injected fault is never
//! checked, so it records no nonce and a retry with a fresh nonce succeeds.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// One fault the sandbox can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `Rate limit exceeded.` with `Retry-After: 1` (row 15).
    RateLimit,
    /// 429 `Too many requests.`, the nonce rejection (row 16c).
    Nonce,
    /// 503 `Service temporarily unavailable.` with `Retry-After: 1`.
    Unavailable,
    /// No answer for a long while (then 504 `Gateway timeout.`): the client's timeout fires.
    Timeout,
    /// The connection is closed without an answer.
    Reset,
    /// The request is processed as usual, and its answer's body arrives slowly, in pieces.
    SlowBody,
}

impl Fault {
    /// Every fault, in the order a random draw tries them.
    pub const ALL: [Fault; 6] = [
        Fault::RateLimit,
        Fault::Nonce,
        Fault::Unavailable,
        Fault::Timeout,
        Fault::Reset,
        Fault::SlowBody,
    ];

    /// The name used in `--faults` and `X-Sandbox-Fault`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "rate_limit",
            Fault::Nonce => "nonce",
            Fault::Unavailable => "unavailable",
            Fault::Timeout => "timeout",
            Fault::Reset => "reset",
            Fault::SlowBody => "slow_body",
        }
    }

    /// The `X-Sandbox-Diagnosis` value marking an injected answer (`injected-rate-limit` …).
    #[must_use]
    pub const fn marker(self) -> &'static str {
        match self {
            Fault::RateLimit => "injected-rate-limit",
            Fault::Nonce => "injected-nonce",
            Fault::Unavailable => "injected-unavailable",
            Fault::Timeout => "injected-timeout",
            Fault::Reset => "injected-reset",
            Fault::SlowBody => "injected-slow-body",
        }
    }

    /// The fault named `name` (`X-Sandbox-Fault`); the error says what the names are.
    pub(crate) fn named(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == name.trim())
            .ok_or_else(|| {
                format!(
                    "unknown fault {:?}: use one of {}",
                    name.trim(),
                    names().join(", ")
                )
            })
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

fn names() -> Vec<&'static str> {
    Fault::ALL.iter().map(|f| f.name()).collect()
}

/// Millionths: probabilities kept exact (and `Eq`).
const MILLION: u32 = 1_000_000;

/// Which faults the sandbox plays at random, how often, and the seed of its draws. The default
/// plays none; `X-Sandbox-Fault` works either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Per fault (in [`Fault::ALL`] order), its probability in millionths.
    chance: [u32; 6],
    /// Extra latency before every answer, drawn uniformly from this range (ms).
    latency_ms: Option<(u64, u64)>,
    /// The seed of the draws; `None`: random.
    seed: Option<u64>,
}

impl Faults {
    /// No random faults.
    pub const NONE: Self = Self {
        chance: [0; 6],
        latency_ms: None,
        seed: None,
    };

    /// The same faults drawn from a fixed seed: the same requests in the same order meet the
    /// same faults.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Whether any fault or latency is drawn at random.
    #[must_use]
    pub fn any(&self) -> bool {
        self.latency_ms.is_some() || self.chance.iter().any(|c| *c > 0)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Fault::ALL
            .iter()
            .zip(self.chance)
            .filter(|(_, c)| *c > 0)
            .map(|(fault, c)| format!("{}={}", fault.name(), f64::from(c) / f64::from(MILLION)))
            .collect();
        if let Some((low, high)) = self.latency_ms {
            parts.push(format!("latency={low}ms..{high}ms"));
        }
        f.write_str(&parts.join(","))
    }
}

const FORMAT: &str = "write NAME=PROBABILITY pairs separated by commas, e.g. \
                      \"rate_limit=0.05,nonce=0.02,latency=20ms..200ms\"";

impl FromStr for Faults {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut faults = Faults::NONE;
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("{item:?} has no '=': {FORMAT}"));
            };
            let (name, value) = (name.trim(), value.trim());
            if name == "latency" {
                faults.latency_ms = Some(latency(value)?);
                continue;
            }
            let fault = Fault::named(name).map_err(|e| format!("{e}, or latency"))?;
            faults.chance[fault.index()] = probability(name, value)?;
        }
        let total: u32 = faults.chance.iter().sum();
        if total > MILLION {
            return Err(format!(
                "the probabilities add up to more than 1 ({}): lower some of them",
                f64::from(total) / f64::from(MILLION)
            ));
        }
        Ok(faults)
    }
}

fn probability(name: &str, value: &str) -> Result<u32, String> {
    let p: f64 = value.parse().map_err(|_| {
        format!("{name}={value}: the probability must be a number from 0 to 1, e.g. {name}=0.05")
    })?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!(
            "{name}={value}: the probability must be from 0 to 1, e.g. {name}=0.05"
        ));
    }
    // In range: the cast cannot overflow.
    Ok((p * f64::from(MILLION)).round() as u32)
}

/// `20ms..200ms`, `20..200`, or one value (`50ms`).
fn latency(value: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!(
            "latency={value}: write a range in milliseconds such as latency=20ms..200ms, or one \
             value such as latency=50ms"
        )
    };
    let ms = |v: &str| -> Result<u64, String> {
        let v = v.trim();
        v.strip_suffix("ms")
            .unwrap_or(v)
            .trim()
            .parse()
            .map_err(|_| bad())
    };
    let (low, high) = match value.split_once("..") {
        Some((low, high)) => (ms(low)?, ms(high)?),
        None => (ms(value)?, ms(value)?),
    };
    if low > high || high > 60_000 {
        return Err(format!(
            "latency={value}: the range must go from low to high, at most 60000ms"
        ));
    }
    Ok((low, high))
}

/// The draws: SplitMix64 from the seed, one step per request for the fault and one for the
/// latency, so a seed replays the same sequence.
#[derive(Debug)]
pub(crate) struct Dice {
    faults: Faults,
    state: Mutex<u64>,
}

impl Dice {
    pub(crate) fn new(faults: Faults) -> Self {
        let seed = faults.seed.unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        });
        Self {
            faults,
            state: Mutex::new(seed),
        }
    }

    fn next(&self) -> u64 {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// This request's fault and extra latency (ms), at random.
    pub(crate) fn roll(&self) -> (Option<Fault>, u64) {
        if !self.faults.any() {
            return (None, 0);
        }
        let draw = u32::try_from(self.next() % u64::from(MILLION)).unwrap_or(0);
        let mut below = 0;
        let mut fault = None;
        for (f, chance) in Fault::ALL.iter().zip(self.faults.chance) {
            below += chance;
            if draw < below {
                fault = Some(*f);
                break;
            }
        }
        let extra = self.next();
        let latency = self
            .faults
            .latency_ms
            .map_or(0, |(low, high)| low + extra % (high - low + 1));
        (fault, latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let f: Faults =
            "rate_limit=0.05,nonce=0.02,unavailable=0.01,latency=20ms..200ms,reset=0.01"
                .parse()
                .expect("parses");
        assert_eq!(
            f.to_string(),
            "rate_limit=0.05,nonce=0.02,unavailable=0.01,reset=0.01,latency=20ms..200ms"
        );
        assert!(f.any());
        assert!(!Faults::NONE.any());
    }

    #[test]
    fn bad_input_is_named() {
        for (text, needle) in [
            ("rate_limit", "no '='"),
            ("slow=0.1", "unknown fault \"slow\""),
            ("nonce=abc", "nonce=abc"),
            ("nonce=2", "from 0 to 1"),
            ("latency=fast", "latency=fast"),
            ("latency=200ms..20ms", "low to high"),
            ("rate_limit=0.6,nonce=0.6", "more than 1"),
        ] {
            let e = text.parse::<Faults>().expect_err(text);
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(Fault::named("nope").is_err_and(|e| e.contains("slow_body")));
    }

    #[test]
    fn a_seed_replays_the_same_draws() {
        let f: Faults = "rate_limit=0.3,nonce=0.3,latency=1..9"
            .parse()
            .expect("parses");
        let a = Dice::new(f.with_seed(7));
        let b = Dice::new(f.with_seed(7));
        let draws: Vec<_> = (0..50).map(|_| a.roll()).collect();
        assert_eq!(draws, (0..50).map(|_| b.roll()).collect::<Vec<_>>());
        assert!(draws.iter().any(|d| d.0 == Some(Fault::RateLimit)));
        assert!(draws.iter().any(|d| d.0.is_none()));
        assert!(draws.iter().all(|d| (1..=9).contains(&d.1)));
        let always = Dice::new("reset=1".parse::<Faults>().expect("parses"));
        assert_eq!(always.roll(), (Some(Fault::Reset), 0));
    }
}
