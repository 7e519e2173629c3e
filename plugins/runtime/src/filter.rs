//! proxy-wasm glue: the root context defines the metric and ticks; each
//! stream counts, writes shared data, and makes its callout.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

use crate::{incremented, parse_configuration, with_vm, Config, CALLOUT_HEADER, NO_STATUS, VERSION, VMS_KEY};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

thread_local! {
    /// Requests this VM served, whatever its config: a VM Envoy keeps
    /// across a config change goes on counting; a new one starts at 1.
    static VM_REQUESTS: Cell<u64> = const { Cell::new(0) };
    /// This VM's name among the VMs of its `vm_id`: when it started, in
    /// nanoseconds since the epoch.
    static VM_NAME: Cell<u128> = const { Cell::new(0) };
}

/// What the streams of a plugin config share: the config, its metric, its
/// queue, its ticks.
#[derive(Default)]
struct Shared {
    config: Option<Config>,
    metric: Option<u32>,
    queue: Option<Queue>,
    ticks: Cell<u64>,
}

/// A shared queue this VM registered, and the counters of its items.
struct Queue {
    id: u32,
    enqueued: u32,
    dequeued: u32,
}

#[derive(Default)]
struct Root {
    shared: Rc<Shared>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let started = self.get_current_time().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        VM_NAME.with(|name| name.set(started.as_nanos()));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match parse_configuration(&bytes) {
            Ok(config) => config,
            Err(e) => {
                error!("runtime: bad configuration: {e}");
                return false;
            }
        };
        let metric = match &config.counter {
            Some(name) => match proxy_wasm::hostcalls::define_metric(MetricType::Counter, name) {
                Ok(id) => Some(id),
                Err(status) => {
                    error!("runtime {}: cannot define metric {name}: {status:?}", config.name);
                    return false;
                }
            },
            None => None,
        };
        if let Some(ms) = config.tick_ms {
            self.set_tick_period(Duration::from_millis(ms));
        }
        let queue = match &config.queue {
            Some(name) => match queue(name) {
                Ok(queue) => Some(queue),
                Err(status) => {
                    error!("runtime {}: cannot set up queue {name}: {status:?}", config.name);
                    return false;
                }
            },
            None => None,
        };
        #[cfg(feature = "higress-redis")]
        if let Some(redis) = &config.redis {
            let status = crate::redis::init(&redis.cluster, redis.timeout_ms);
            info!("runtime {}: redis {} set up: status {status}", config.name, redis.cluster);
        }
        info!("runtime {}: configured", config.name);
        // Streams already open keep the config they were made with.
        self.shared = Rc::new(Shared { config: Some(config), metric, queue, ..Shared::default() });
        true
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let Some(queue) = self.shared.queue.as_ref().filter(|q| q.id == queue_id) else { return };
        while let Ok(Some(_)) = self.dequeue_shared_queue(queue_id) {
            if let Err(status) = proxy_wasm::hostcalls::increment_metric(queue.dequeued, 1) {
                warn!("runtime: cannot count a dequeued item: {status:?}");
            }
        }
    }

    fn on_tick(&mut self) {
        self.shared.ticks.set(self.shared.ticks.get() + 1);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { shared: self.shared.clone(), report: Vec::new() }))
    }
}

/// Registers the shared queue `name` and defines its counters.
fn queue(name: &str) -> Result<Queue, Status> {
    let id = proxy_wasm::hostcalls::register_shared_queue(name)?;
    let enqueued = proxy_wasm::hostcalls::define_metric(MetricType::Counter, &format!("{name}_enqueued"))?;
    let dequeued = proxy_wasm::hostcalls::define_metric(MetricType::Counter, &format!("{name}_dequeued"))?;
    Ok(Queue { id, enqueued, dequeued })
}

struct Stream {
    shared: Rc<Shared>,
    /// Response headers to add.
    report: Vec<(&'static str, String)>,
}

impl Stream {
    /// Replaces the shared-data value `key` with what `next` makes of it,
    /// by compare-and-swap, again on a lost race; returns the value written.
    fn update_shared(&self, key: &str, next: impl Fn(Option<&[u8]>) -> String) -> Result<String, Status> {
        loop {
            let (current, cas) = self.get_shared_data(key);
            let value = next(current.as_deref());
            match self.set_shared_data(key, Some(value.as_bytes()), cas) {
                Ok(()) => return Ok(value),
                Err(Status::CasMismatch) => continue,
                Err(status) => return Err(status),
            }
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_else(|| NO_STATUS.to_owned());
        info!("runtime: callout answered {status}, {body_size} body bytes");
        self.report.push(("x-callout-status", status));
        self.report.push(("x-callout-body-bytes", body_size.to_string()));
        self.resume_http_request();
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let shared = self.shared.clone();
        let Some(config) = &shared.config else { return Action::Continue };
        let count = VM_REQUESTS.with(|requests| {
            requests.set(requests.get() + 1);
            requests.get()
        });
        info!("runtime {}: request {count}", config.name);
        self.report.push(("x-runtime", config.name.clone()));
        self.report.push(("x-runtime-version", VERSION.to_owned()));
        self.report.push(("x-runtime-count", count.to_string()));
        if let Some(metric) = shared.metric {
            if let Err(status) = proxy_wasm::hostcalls::increment_metric(metric, 1) {
                warn!("runtime {}: cannot count: {status:?}", config.name);
            }
        }
        if let Some(key) = &config.shared {
            let value = self.update_shared(key, |current| incremented(current).to_string());
            self.report.push(("x-runtime-shared", value.unwrap_or_else(|status| format!("error {status:?}"))));
        }
        let me = VM_NAME.with(Cell::get).to_string();
        let vms = self.update_shared(VMS_KEY, |current| with_vm(current, &me));
        let listed = vms.map_or_else(|status| format!("error {status:?}"), |vms| vms.split(',').count().to_string());
        self.report.push(("x-runtime-vms", listed));
        if let Some(queue) = &shared.queue {
            let queued = self.enqueue_shared_queue(queue.id, Some(count.to_string().as_bytes()));
            let counted = queued.and_then(|()| proxy_wasm::hostcalls::increment_metric(queue.enqueued, 1));
            if let Err(status) = counted {
                self.report.push(("x-runtime-queue-error", format!("{status:?}")));
            }
        }
        if config.tick_ms.is_some() {
            self.report.push(("x-runtime-ticks", shared.ticks.get().to_string()));
        }
        let Some(name) = self.get_http_request_header(CALLOUT_HEADER) else { return Action::Continue };
        let Some(callout) = config.callouts.get(&name) else {
            self.report.push(("x-callout-error", format!("no callout {name:?} in the config")));
            return Action::Continue;
        };
        let mut headers =
            vec![(":method", "GET"), (":path", callout.path.as_str()), (":authority", callout.authority.as_str())];
        headers.extend(callout.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let timeout = Duration::from_millis(callout.timeout_ms);
        match self.dispatch_http_call(&callout.cluster, headers, None, vec![], timeout) {
            Ok(_) => Action::Pause,
            Err(status) => {
                info!("runtime {}: callout {name} not dispatched: {status:?}", config.name);
                self.report.push(("x-callout-error", format!("{status:?}")));
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.report) {
            self.set_http_response_header(name, Some(&value));
        }
        Action::Continue
    }
}
