// corpus: exercise=bus bin=bus-counter
// design: async API with zbus::block_on, connection::Builder, one select over three events
// checks: counter-
// expect: full
//! A different route to `bus-counter`: zbus's async API on its own thread
//! pool-free executor (`zbus::block_on`), the connection built with
//! `connection::Builder` (object served and name requested by the builder,
//! DO_NOT_QUEUE without replacement), and one async select over three
//! event sources: a Quit channel, a signal-handling thread's channel, and
//! the end of a message stream.
use std::io::Write as _;
use std::process::ExitCode;

use futures_lite::{future, StreamExt};
use nix::sys::signal::{SigSet, Signal};
use zbus::object_server::SignalEmitter;
use zbus::{connection, interface, DBusError};

#[derive(Debug, DBusError)]
#[zbus(prefix = "de.ipclab.Counter1.Error")]
enum CounterError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Overflow(String),
}

struct Counter {
    total: i64,
    quit: async_channel_lite::Sender,
}

mod async_channel_lite {
    //! A one-shot "quit" flag with a waker, from std parts.
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};
    #[derive(Clone, Default)]
    pub struct Sender(Arc<Mutex<(bool, Option<Waker>)>>);
    impl Sender {
        pub fn fire(&self) {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            if let Some(w) = g.1.take() {
                w.wake();
            }
        }
        pub async fn fired(&self) {
            std::future::poll_fn(|cx| {
                let mut g = self.0.lock().unwrap();
                if g.0 {
                    Poll::Ready(())
                } else {
                    g.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }
}

#[interface(name = "de.ipclab.Counter1")]
impl Counter {
    #[zbus(out_args("total"))]
    async fn add(&mut self, x: i64, #[zbus(signal_emitter)] e: SignalEmitter<'_>) -> Result<i64, CounterError> {
        let Some(t) = self.total.checked_add(x) else {
            return Err(CounterError::Overflow(format!("{} + {x}", self.total)));
        };
        self.total = t;
        Self::changed(&e, t).await?;
        Ok(t)
    }
    #[zbus(out_args("total"))]
    fn get(&self) -> i64 {
        self.total
    }
    async fn reset(&mut self, #[zbus(signal_emitter)] e: SignalEmitter<'_>) -> Result<(), CounterError> {
        self.total = 0;
        Self::changed(&e, 0).await?;
        Ok(())
    }
    fn quit(&self) {
        self.quit.fire();
    }
    #[zbus(signal)]
    async fn changed(e: &SignalEmitter<'_>, total: i64) -> zbus::Result<()>;
}

enum End {
    Quit,
    Stop,
    Lost,
}

async fn run() -> Result<(), String> {
    let quit = async_channel_lite::Sender::default();
    let stop = async_channel_lite::Sender::default();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| e.to_string())?;
    let s2 = stop.clone();
    std::thread::spawn(move || {
        if mask.wait().is_ok() {
            s2.fire();
        }
    });
    let builder = connection::Builder::session().map_err(|e| format!("cannot connect to the session bus: {e}"))?;
    let conn = builder
        .serve_at("/de/ipclab/Counter", Counter { total: 0, quit: quit.clone() })
        .and_then(|b| b.name("de.ipclab.Counter"))
        // The builder's defaults let a later requester take the name over.
        .map(|b| b.allow_name_replacements(false).replace_existing_names(false))
        .map_err(|e| format!("D-Bus: {e}"))?
        .build()
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => "name de.ipclab.Counter is taken".to_string(),
            e => format!("cannot connect to the session bus: {e}"),
        })?;
    let mut stream = zbus::MessageStream::for_match_rule(
        "type='signal',sender='org.freedesktop.DBus',member='NameLost',arg0='de.ipclab.Counter'",
        &conn,
        None,
    )
    .await
    .map_err(|e| format!("D-Bus: {e}"))?;
    let unique = conn.unique_name().map(|n| n.to_string()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {unique}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    drop(out);
    let end = future::or(
        async {
            quit.fired().await;
            End::Quit
        },
        future::or(
            async {
                stop.fired().await;
                End::Stop
            },
            async {
                while let Some(Ok(_)) = stream.next().await {}
                End::Lost
            },
        ),
    )
    .await;
    match end {
        End::Lost => Err("lost the bus connection".into()),
        End::Quit | End::Stop => {
            // Every call in progress answered: the interface's lock.
            let iface =
                conn.object_server().interface::<_, Counter>("/de/ipclab/Counter").await.map_err(|e| e.to_string())?;
            drop(iface.get_mut().await);
            conn.release_name("de.ipclab.Counter").await.map_err(|e| format!("D-Bus: {e}"))?;
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match zbus::block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "bus-counter: {e}");
            ExitCode::from(1)
        }
    }
}
