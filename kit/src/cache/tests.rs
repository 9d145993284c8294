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
        decode::<i64>(Some(tombstone()), &mut Now::default()),
        Lookup::Miss {
            seen: Some(Some(_))
        }
    ));
}

#[test]
fn values_and_absence_round_trip() {
    assert!(matches!(
        decode::<i64>(Some(encode_value(&42i64, u64::MAX)), &mut Now::default()),
        Lookup::Found(42)
    ));
    assert!(matches!(
        decode::<i64>(Some(Bytes::from_static(&[NOT_FOUND])), &mut Now::default()),
        Lookup::NotFound
    ));
    assert!(matches!(
        decode::<i64>(None, &mut Now::default()),
        Lookup::Miss { seen: Some(None) }
    ));
}

#[test]
fn a_value_is_due_for_refresh_only_from_its_stamp_on() {
    let now = unix_millis();
    let due = |refresh_at| {
        matches!(
            decode::<i64>(Some(encode_value(&7i64, refresh_at)), &mut Now::default()),
            Lookup::Due { value: 7, .. }
        )
    };
    assert!(due(now.saturating_sub(1)));
    assert!(!due(now + 60_000));
    assert!(!due(u64::MAX), "refresh-ahead off");
    // What an earlier version wrote is read, never refreshed.
    let mut legacy = BytesMut::from(&[VALUE][..]);
    prost::Message::encode(&7i64, &mut legacy).unwrap();
    assert!(matches!(
        decode::<i64>(Some(legacy.freeze()), &mut Now::default()),
        Lookup::Found(7)
    ));
}

#[test]
fn a_refresh_fraction_outside_zero_to_one_is_refused_at_start_up() {
    for bad in [-0.1, 1.5, f64::NAN] {
        let settings = CacheSettings {
            refresh_ahead: bad,
            ..CacheSettings::default()
        };
        let error = Cache::new(&settings, &Registry::new()).unwrap_err();
        assert!(error.to_string().contains("cache.refresh_ahead"), "{error}");
    }
}
