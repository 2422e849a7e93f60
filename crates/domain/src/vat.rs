//! Israeli VAT (מע"מ): a rate table by effective date, and VAT arithmetic on agorot.
//!
//! Rounding: every VAT amount is rounded to the agora, half away from zero (0.5 agora becomes
//! 1 agora, -0.5 becomes -1), computed exactly in integers. Splitting a gross amount rounds the
//! VAT and gives the remainder to the net, so `net + vat == gross` always holds.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::Agorot;

/// A VAT rate in basis points: 1800 is 18%. Between 0% and 100%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct VatRate(u32);

const BASIS: i128 = 10_000;

/// The rate in force from each date on, oldest first; a date takes the last entry that starts
/// on or before it.
///
/// The project applies 17% to every date before 2025-01-01 (design.md §6). The real history,
/// kept here as a comment only because nothing before 2025 is billed through this engine:
/// 16% from 1 July 2012 → 17% from 1 September 2012 → 18% from 2 June 2013 → 17% from
/// 1 October 2015 (providers.md marks this one [?]) → 18% from 1 January 2025 (order of
/// 28 February 2024; ITA instruction 01/2025).
const RATES: &[(NaiveDate, VatRate)] = &[
    (NaiveDate::MIN, VatRate(1700)),
    (
        NaiveDate::from_ymd_opt(2025, 1, 1).expect("a valid date"),
        VatRate(1800),
    ),
];

/// The VAT rate in force on `date` (the tax point: delivery for goods, payment for cash-basis
/// small businesses; choosing the right date is the caller's business).
pub fn vat_rate_on(date: NaiveDate) -> VatRate {
    RATES
        .iter()
        .rev()
        .find(|(from, _)| *from <= date)
        .map(|(_, rate)| *rate)
        .expect("the table starts at NaiveDate::MIN")
}

impl VatRate {
    /// A rate from basis points, e.g. from a provider's `getvatrate` answer; `None` above 100%.
    pub const fn from_basis_points(basis_points: u32) -> Option<VatRate> {
        if basis_points <= 10_000 {
            Some(VatRate(basis_points))
        } else {
            None
        }
    }

    pub const fn basis_points(self) -> u32 {
        self.0
    }

    /// The VAT due on a net (pre-VAT) amount, rounded half away from zero to the agora.
    pub fn vat_on_net(self, net: Agorot) -> Agorot {
        let vat = round_half_away(i128::from(net.get()) * i128::from(self.0), BASIS);
        // |vat| ≤ |net| because the rate is at most 100%, so it fits.
        Agorot::new(vat as i64)
    }

    /// The gross amount for a net amount: net plus its VAT; `None` on overflow.
    pub fn gross_from_net(self, net: Agorot) -> Option<Agorot> {
        net.checked_add(self.vat_on_net(net))
    }

    /// Splits a VAT-inclusive amount into `(net, vat)`: the VAT is `gross · rate / (1 + rate)`
    /// rounded half away from zero, and the net is the rest.
    pub fn split_gross(self, gross: Agorot) -> (Agorot, Agorot) {
        let rate = i128::from(self.0);
        let vat = round_half_away(i128::from(gross.get()) * rate, BASIS + rate);
        // |vat| ≤ |gross| / 2 for rates up to 100%, so both fit and the subtraction cannot
        // overflow.
        let vat = vat as i64;
        (Agorot::new(gross.get() - vat), Agorot::new(vat))
    }
}

/// `numerator / denominator` rounded to the nearest integer, ties away from zero.
/// `denominator` is positive.
fn round_half_away(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if 2 * remainder.abs() >= denominator {
        quotient + numerator.signum()
    } else {
        quotient
    }
}

/// `18%`, `17.5%`.
impl fmt::Display for VatRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 100;
        let fraction = self.0 % 100;
        if fraction == 0 {
            write!(f, "{whole}%")
        } else if fraction.is_multiple_of(10) {
            write!(f, "{whole}.{}%", fraction / 10)
        } else {
            write!(f, "{whole}.{fraction:02}%")
        }
    }
}

impl TryFrom<u32> for VatRate {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        VatRate::from_basis_points(value)
            .ok_or_else(|| format!("a VAT rate of {value} basis points is above 100%"))
    }
}

impl From<VatRate> for u32 {
    fn from(value: VatRate) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rate(bp: u32) -> VatRate {
        VatRate::from_basis_points(bp).unwrap()
    }

    #[test]
    fn the_rate_is_17_percent_before_2025_and_18_percent_from_then() {
        assert_eq!(vat_rate_on(date(2024, 12, 31)).basis_points(), 1700);
        assert_eq!(vat_rate_on(date(2025, 1, 1)).basis_points(), 1800);
        assert_eq!(vat_rate_on(date(2026, 6, 9)).basis_points(), 1800);
        assert_eq!(vat_rate_on(date(2016, 3, 1)).basis_points(), 1700);
        assert_eq!(vat_rate_on(NaiveDate::MIN).basis_points(), 1700);
        assert_eq!(vat_rate_on(NaiveDate::MAX).basis_points(), 1800);
    }

    #[test]
    fn vat_on_net_rounds_half_away_from_zero() {
        let r18 = rate(1800);
        // ₪49.00 net → ₪8.82 VAT, ₪57.82 gross (providers.md §1.5).
        assert_eq!(r18.vat_on_net(Agorot::new(4900)), Agorot::new(882));
        assert_eq!(
            r18.gross_from_net(Agorot::new(4900)),
            Some(Agorot::new(5782))
        );
        // 25 · 0.18 = 4.5 → 5; -25 → -5; 24 · 0.18 = 4.32 → 4; 36 · 0.18 = 6.48 → 6.
        assert_eq!(r18.vat_on_net(Agorot::new(25)), Agorot::new(5));
        assert_eq!(r18.vat_on_net(Agorot::new(-25)), Agorot::new(-5));
        assert_eq!(r18.vat_on_net(Agorot::new(24)), Agorot::new(4));
        assert_eq!(r18.vat_on_net(Agorot::new(36)), Agorot::new(6));
        // 50 · 0.17 = 8.5 → 9.
        assert_eq!(rate(1700).vat_on_net(Agorot::new(50)), Agorot::new(9));
    }

    #[test]
    fn split_gross_rounds_the_vat_and_gives_the_rest_to_the_net() {
        let r18 = rate(1800);
        // ₪118.00 → ₪100.00 + ₪18.00.
        assert_eq!(
            r18.split_gross(Agorot::new(11800)),
            (Agorot::new(10000), Agorot::new(1800))
        );
        // ₪100.00 → 10000 · 18/118 = 1525.42… → ₪15.25 VAT, ₪84.75 net.
        assert_eq!(
            r18.split_gross(Agorot::new(10000)),
            (Agorot::new(8475), Agorot::new(1525))
        );
        // 59 · 18/118 = 9 exactly; 59 agorot → 50 + 9.
        assert_eq!(
            r18.split_gross(Agorot::new(59)),
            (Agorot::new(50), Agorot::new(9))
        );
        // A half at 100%: 3 · 10000 / 20000 = 1.5 → 2, and -3 → -2.
        assert_eq!(
            rate(10_000).split_gross(Agorot::new(3)),
            (Agorot::new(1), Agorot::new(2))
        );
        assert_eq!(
            rate(10_000).split_gross(Agorot::new(-3)),
            (Agorot::new(-1), Agorot::new(-2))
        );
        assert_eq!(
            rate(0).split_gross(Agorot::new(999)),
            (Agorot::new(999), Agorot::ZERO)
        );
    }

    #[test]
    fn rates_above_100_percent_are_refused() {
        assert!(VatRate::from_basis_points(10_001).is_none());
        assert!(serde_json::from_str::<VatRate>("10001").is_err());
        assert_eq!(serde_json::from_str::<VatRate>("1800").unwrap(), rate(1800));
    }

    #[test]
    fn rates_display_as_percentages() {
        assert_eq!(rate(1800).to_string(), "18%");
        assert_eq!(rate(1750).to_string(), "17.5%");
        assert_eq!(rate(1725).to_string(), "17.25%");
    }

    proptest! {
        #[test]
        fn net_plus_vat_is_gross(gross in any::<i64>(), bp in 0u32..=10_000) {
            let (net, vat) = rate(bp).split_gross(Agorot::new(gross));
            prop_assert_eq!(net.checked_add(vat), Some(Agorot::new(gross)));
        }

        #[test]
        fn splitting_a_gross_built_from_a_net_gives_that_net_back(
            net in -1_000_000_000_000i64..1_000_000_000_000,
            bp in 0u32..=10_000,
        ) {
            let rate = rate(bp);
            let gross = rate.gross_from_net(Agorot::new(net)).unwrap();
            prop_assert_eq!(rate.split_gross(gross), (Agorot::new(net), rate.vat_on_net(Agorot::new(net))));
        }

        #[test]
        fn vat_is_within_half_an_agora_of_the_exact_value(net in any::<i64>(), bp in 0u32..=10_000) {
            let vat = rate(bp).vat_on_net(Agorot::new(net)).get();
            let exact_times_basis = i128::from(net) * i128::from(bp);
            let error = (i128::from(vat) * BASIS - exact_times_basis).abs();
            prop_assert!(2 * error <= BASIS);
            // Same sign as the net (or zero).
            prop_assert!(vat == 0 || vat.signum() == net.signum());
        }

        #[test]
        fn vat_is_odd_symmetric(net in -i64::MAX..=i64::MAX, bp in 0u32..=10_000) {
            let r = rate(bp);
            prop_assert_eq!(r.vat_on_net(Agorot::new(-net)).get(), -r.vat_on_net(Agorot::new(net)).get());
        }
    }
}
