//! Committed events as the bus carries them (`EventEnvelope`), read as the projectors and the
//! SFU read them: the envelope, then its payload as the event type of its aggregate. Every event
//! that parses must serialise back to JSON that parses to the same event (the event store's
//! schema is forever: a form that does not survive a round trip would be read back as something
//! else). The SFU's reading of revocations (`Revocation::from_envelope`) runs on each envelope.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_domain::envelope::EventEnvelope;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trips<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(envelope: &EventEnvelope) {
    let Ok(event) = envelope.decode::<T>() else { return };
    let json = serde_json::to_string(&event).unwrap_or_else(|e| panic!("{event:?} does not serialise: {e}"));
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{event:?} serialised as {json}: {e}"));
    assert_eq!(back, event, "serialised as {json}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(data) else { return };
    let json = serde_json::to_string(&envelope).unwrap_or_else(|e| panic!("an envelope does not serialise: {e}"));
    let back: EventEnvelope = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(serde_json::to_string(&back).ok().as_deref(), Some(json.as_str()), "an envelope changed on the way");
    let _ = parley_sfu::rights::Revocation::from_envelope(&envelope);
    // Every type, not only the one `aggregate_type` names: a projector that reads the wrong
    // type must get an error, not a panic.
    round_trips::<parley_domain::call::CallEvent>(&envelope);
    round_trips::<parley_domain::chat::ChatEvent>(&envelope);
    round_trips::<parley_domain::device::DeviceEvent>(&envelope);
    round_trips::<parley_domain::inbox::InboxEvent>(&envelope);
    round_trips::<parley_domain::media::MediaEvent>(&envelope);
    round_trips::<parley_domain::session::SessionEvent>(&envelope);
    round_trips::<parley_domain::to_device::ToDeviceEvent>(&envelope);
    round_trips::<parley_domain::user::UserEvent>(&envelope);
});
