use super::*;

#[test]
fn jitter_spreads_ttls_within_the_fraction() {
    let ttl = Duration::from_secs(100);
    let spread: Vec<Duration> = (0..200).map(|_| jittered(ttl, 0.1)).collect();
    assert!(
        spread
            .iter()
            .all(|d| (Duration::from_secs(90)..=Duration::from_secs(110)).contains(d))
    );
    assert!(spread.iter().any(|d| *d != spread[0]), "no jitter at all");
    assert_eq!(jittered(ttl, 0.0), ttl);
}

#[test]
fn every_write_leaves_a_different_tombstone() {
    assert_ne!(tombstone(), tombstone());
    assert!(matches!(
        decode::<i64>(Some(tombstone())),
        Lookup::Miss {
            seen: Some(Some(_))
        }
    ));
}

#[test]
fn values_and_absence_round_trip() {
    assert!(matches!(
        decode::<i64>(Some(encode_value(&42i64))),
        Lookup::Found(42)
    ));
    assert!(matches!(
        decode::<i64>(Some(Bytes::from_static(&[NOT_FOUND]))),
        Lookup::NotFound
    ));
    assert!(matches!(
        decode::<i64>(None),
        Lookup::Miss { seen: Some(None) }
    ));
}
