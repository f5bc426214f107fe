//! When digests are due: once a day at a local time in an IANA zone, correct across DST.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// The digest time on `date` in `zone`. A time skipped by a DST jump resolves to the instant
/// just after the gap, and a repeated hour to its first occurrence (jiff's "compatible" rule),
/// so there is exactly one slot every local day.
fn slot_on(date: jiff::civil::Date, at: Time, zone: &TimeZone) -> Option<Zoned> {
    date.to_datetime(at).to_zoned(zone.clone()).ok()
}

/// The latest digest slot at or before `now`.
pub fn latest_slot_at_or_before(now: Timestamp, at: Time, zone: &TimeZone) -> Option<Timestamp> {
    let today = now.to_zoned(zone.clone()).date();
    for back in 0..3 {
        let date = today.checked_sub(back.days()).ok()?;
        if let Some(slot) = slot_on(date, at, zone)
            && slot.timestamp() <= now
        {
            return Some(slot.timestamp());
        }
    }
    None
}

/// The first digest slot strictly after `now`.
pub fn next_slot_after(now: Timestamp, at: Time, zone: &TimeZone) -> Option<Timestamp> {
    let today = now.to_zoned(zone.clone()).date();
    for ahead in 0..3 {
        let date = today.checked_add(ahead.days()).ok()?;
        if let Some(slot) = slot_on(date, at, zone)
            && slot.timestamp() > now
        {
            return Some(slot.timestamp());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn next_slot_is_today_or_tomorrow_in_local_time() {
        let london = TimeZone::get("Europe/London").unwrap();
        let seven = Time::constant(7, 0, 0, 0);
        // Winter: London is UTC+0.
        assert_eq!(
            next_slot_after(ts("2026-01-10T06:00:00Z"), seven, &london),
            Some(ts("2026-01-10T07:00:00Z"))
        );
        assert_eq!(
            next_slot_after(ts("2026-01-10T07:00:00Z"), seven, &london),
            Some(ts("2026-01-11T07:00:00Z"))
        );
        // Summer: UTC+1, so 07:00 local is 06:00 UTC.
        assert_eq!(
            next_slot_after(ts("2026-07-10T05:00:00Z"), seven, &london),
            Some(ts("2026-07-10T06:00:00Z"))
        );
    }

    #[test]
    fn dst_change_days_have_one_slot() {
        let london = TimeZone::get("Europe/London").unwrap();
        // 29 Mar 2026: clocks go 01:00 -> 02:00 UTC+1. A 01:30 slot falls in the gap.
        let gap = Time::constant(1, 30, 0, 0);
        let slot = next_slot_after(ts("2026-03-29T00:00:00Z"), gap, &london).unwrap();
        assert_eq!(slot, ts("2026-03-29T01:30:00Z"));
        // 25 Oct 2026: 01:30 happens twice; the first (UTC+1) is taken, once.
        let slot = next_slot_after(ts("2026-10-25T00:00:00Z"), gap, &london).unwrap();
        assert_eq!(slot, ts("2026-10-25T00:30:00Z"));
        let after = next_slot_after(slot, gap, &london).unwrap();
        assert_eq!(after, ts("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn latest_slot_looks_back() {
        let zone = TimeZone::get("America/New_York").unwrap();
        let seven = Time::constant(7, 0, 0, 0);
        assert_eq!(
            latest_slot_at_or_before(ts("2026-01-10T13:00:00Z"), seven, &zone),
            Some(ts("2026-01-10T12:00:00Z"))
        );
        assert_eq!(
            latest_slot_at_or_before(ts("2026-01-10T11:00:00Z"), seven, &zone),
            Some(ts("2026-01-09T12:00:00Z"))
        );
    }
}
