//! Lanes: one request at a time each, on their slot's connection. A short
//! lane sends paced short requests until the load's end; a long lane opens
//! long streams one after another while each still fits in the load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::MissedTickBehavior;

use super::clock::Clock;
use super::connection::{chain, is_reset, Connection, SendError, Slot, Target};
use super::{Answer, LongStream, Protocol, Sample, StreamEnd, StreamShape, GRACE};
use crate::components::echo::LAST_EVENT;

/// What one lane saw.
#[derive(Default)]
pub(super) struct LaneRecording {
    pub samples: Vec<Sample>,
    pub streams: Vec<LongStream>,
    pub resent: usize,
}

/// Paced short requests, `interval` apart, the first after `offset`.
pub(super) async fn short(slot: Arc<Slot>, interval: Duration, offset: Duration) -> LaneRecording {
    let mut seen = LaneRecording::default();
    let clock = &slot.clock;
    let failed = |connection, sent, error: String| Sample {
        slot: slot.index,
        protocol: slot.protocol,
        connection,
        sent,
        answered: clock.since(),
        outcome: Answer::Failed(error),
    };
    let target = match Target::new(slot.protocol, &slot.spec) {
        Ok(target) => target,
        Err(error) => {
            seen.samples.push(failed(0, clock.since(), error));
            return seen;
        }
    };
    tokio::time::sleep(offset).await;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        ticks.tick().await;
        if clock.over() {
            break;
        }
        let sent = clock.since();
        // A request that never went out (its connection was going away) is
        // sent again once, at once, on a new connection.
        let mut attempts = 0;
        let sample = loop {
            attempts += 1;
            let connection = match slot.connection().await {
                Ok(connection) => connection,
                Err(error) => break failed(0, sent, error),
            };
            match exchange(&connection, &target, slot.protocol, clock).await {
                Ok((status, version)) => {
                    break Sample {
                        slot: slot.index,
                        protocol: slot.protocol,
                        connection: connection.number,
                        sent,
                        answered: clock.since(),
                        outcome: Answer::Response { status, version },
                    }
                }
                Err(SendError::Unsent(error)) => {
                    connection.give_up();
                    if attempts == 2 {
                        break failed(connection.number, sent, format!("not sent, twice: {error}"));
                    }
                    seen.resent += 1;
                }
                Err(SendError::Reset(error)) => break failed(connection.number, sent, error),
                Err(SendError::Failed(error)) => {
                    // An HTTP/1.1 connection is done after any failure; an
                    // HTTP/2 one only if its driver says so.
                    if slot.protocol == Protocol::Http1 {
                        connection.give_up();
                    }
                    break failed(connection.number, sent, error);
                }
            }
        };
        seen.samples.push(sample);
    }
    done(&slot).await;
    seen
}

/// A lane of an HTTP/1.1 slot is its only one: when it is done, so is
/// its connection.
async fn done(slot: &Slot) {
    if slot.protocol == Protocol::Http1 {
        slot.release().await;
    }
}

/// One short request: its status and version, the body read to its end.
async fn exchange(
    connection: &Connection,
    target: &Target,
    protocol: Protocol,
    clock: &Clock,
) -> Result<(u16, Option<String>), SendError> {
    let answer = async {
        let response = connection.send(target.request(protocol, false), clock).await?;
        let status = response.status().as_u16();
        let version = header(&response, target);
        response.into_body().collect().await.map_err(|e| SendError::Failed(format!("body: {}", chain(&e))))?;
        Ok((status, version))
    };
    match tokio::time::timeout_at(clock.last_answer(), answer).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Failed(format!("no answer {GRACE:?} after the load's end"))),
    }
}

fn header(response: &hyper::Response<Incoming>, target: &Target) -> Option<String> {
    response.headers().get(&target.version).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Long streams one after another, each started only if it can end before
/// the load does.
pub(super) async fn long(slot: Arc<Slot>) -> LaneRecording {
    let mut seen = LaneRecording::default();
    let clock = &slot.clock;
    let shape = slot.spec.plan.long.as_ref().expect("a long lane has a long plan").shape;
    let target = Target::new(slot.protocol, &slot.spec);
    while Instant::now() + shape.length() <= clock.deadline {
        let started = clock.since();
        let mut stream = LongStream {
            slot: slot.index,
            protocol: slot.protocol,
            connection: 0,
            started,
            answered: None,
            ended: started,
            status: None,
            version: None,
            chunks: 0,
            expected_chunks: shape.chunks,
            end: StreamEnd::Completed,
        };
        stream.end = match &target {
            Ok(target) => open_long(&slot, target, shape, &mut stream, &mut seen.resent).await,
            Err(error) => StreamEnd::Error(error.clone()),
        };
        stream.ended = clock.since();
        let failed = stream.end != StreamEnd::Completed;
        seen.streams.push(stream);
        if failed {
            // Not at once: a proxy that refuses every stream must not spin the lane.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    done(&slot).await;
    seen
}

/// Opens one long stream and reads it to its end; how it ended.
async fn open_long(
    slot: &Slot,
    target: &Target,
    shape: StreamShape,
    stream: &mut LongStream,
    resent: &mut usize,
) -> StreamEnd {
    let clock = &slot.clock;
    let mut attempts = 0;
    let (connection, response) = loop {
        attempts += 1;
        let connection = match slot.connection().await {
            Ok(connection) => connection,
            Err(error) => return StreamEnd::Error(error),
        };
        stream.connection = connection.number;
        let sent = connection.send(target.request(slot.protocol, true), clock);
        match tokio::time::timeout_at(clock.last_answer(), sent).await {
            Err(_) => return StreamEnd::Error(format!("no response headers {GRACE:?} after the load's end")),
            Ok(Ok(response)) => break (connection, response),
            Ok(Err(SendError::Unsent(error))) => {
                connection.give_up();
                if attempts == 2 {
                    return StreamEnd::Error(format!("not sent, twice: {error}"));
                }
                *resent += 1;
            }
            Ok(Err(SendError::Reset(error))) => return StreamEnd::Reset(error),
            Ok(Err(SendError::Failed(error))) => {
                if slot.protocol == Protocol::Http1 {
                    connection.give_up();
                }
                return cut(&connection, error);
            }
        }
    };
    stream.answered = Some(clock.since());
    stream.status = Some(response.status().as_u16());
    stream.version = header(&response, target);
    let mut body = response.into_body();
    // The last `size` bytes, whatever frames they came in.
    let (mut bytes, mut tail) = (0usize, Vec::with_capacity(shape.size));
    loop {
        match tokio::time::timeout_at(clock.last_answer(), body.frame()).await {
            Err(_) => {
                return StreamEnd::Error(format!(
                    "still open {GRACE:?} after the load's end, {bytes} bytes in ({} of {} chunks)",
                    stream.chunks, shape.chunks
                ))
            }
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    bytes += data.len();
                    stream.chunks = (bytes / shape.size) as u32;
                    tail.extend_from_slice(&data);
                    tail.drain(..tail.len().saturating_sub(shape.size));
                }
            }
            Ok(Some(Err(error))) => {
                if slot.protocol == Protocol::Http1 {
                    connection.give_up();
                }
                let error = format!("after {} of {} chunks: {}", stream.chunks, shape.chunks, chain(&error));
                return cut(&connection, error);
            }
        }
    }
    match shape.body_bytes() {
        // The delayed JSON echo: any complete body.
        None => StreamEnd::Completed,
        Some(expected) if bytes == expected && ends_the_stream(&tail, shape) => StreamEnd::Completed,
        Some(expected) => StreamEnd::Error(format!(
            "the body ended after {bytes} of {expected} bytes ({} of {} chunks)",
            stream.chunks, shape.chunks
        )),
    }
}

/// Whether the body's last chunk is the backend's last event.
fn ends_the_stream(tail: &[u8], shape: StreamShape) -> bool {
    tail.len() == shape.size && tail.starts_with(format!("event: {LAST_EVENT}\n").as_bytes())
}

/// A stream cut by `error`: reset, cut after a notice, or cut without one.
fn cut(connection: &Connection, error: String) -> StreamEnd {
    if is_reset(&error) {
        StreamEnd::Reset(error)
    } else if connection.announced() {
        StreamEnd::ClosedWithNotice(error)
    } else {
        StreamEnd::Error(format!("closed without notice: {error}"))
    }
}
