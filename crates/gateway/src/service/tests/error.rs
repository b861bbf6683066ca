//! Error messages and bodies.

use super::*;
use crate::service::error::format_duration;
use wbauth_store::StoreError;

#[test]
fn durations_read_well() {
    assert_eq!(format_duration(900_000), "15 min");
    assert_eq!(format_duration(899_001), "15 min");
    assert_eq!(format_duration(870_000), "14 min 30 s");
    assert_eq!(format_duration(1), "1 s");
    assert_eq!(
        ManageError::Store(StoreError::Unavailable("x".into())).body(),
        r#"{"code":0,"message":"Service temporarily unavailable."}"#
    );
}
