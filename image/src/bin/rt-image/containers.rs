//! rt-image's containers: `run` once its bundle is made (`rt run`, then
//! the network released and, with --rm, the bundle removed), `stop`, `ps`.
//! They run outside rt-image's user namespace (where `rt` runs).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use rt_image::network;
use rt_image::store::Store;

/// `run`'s bundle directory.
pub fn run_dir(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}

/// What `run` does once its bundle is made.
pub struct Start {
    pub id: String,
    pub detach: bool,
    pub rm: bool,
}

fn store_root(root: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match root {
        Some(r) => r,
        None => rt_image::store::default_root()?,
    })
}

/// The rt beside rt-image, else PATH's.
fn rt_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("find rt-image")?;
    Ok(me
        .parent()
        .map(|d| d.join("rt"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("rt")))
}

/// `rt-image bundle --remove DIR`, run again (so that a rootless store's
/// files are removed inside rt-image's user namespace).
fn remove_bundle(root: &Path, dir: &Path) -> Result<()> {
    let me = std::env::current_exe().context("find rt-image")?;
    let removed = Command::new(&me)
        .arg("--root")
        .arg(root)
        .args(["bundle", "--remove"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .context("remove the bundle")?;
    if !removed.success() {
        bail!("the bundle {} was not removed", dir.display());
    }
    Ok(())
}

/// `run` once its bundle is made: `rt run`; a foreground run's network is
/// released when the container has exited (and with --rm its bundle
/// removed); a detached one prints its network.
pub fn start(root: Option<PathBuf>, s: &Start) -> Result<ExitCode> {
    let Start { id, detach, rm } = s;
    let root = store_root(root)?;
    let dir = run_dir(&root, id);
    let rt = rt_binary()?;
    let mut c = Command::new(&rt);
    c.arg("run").arg("-b").arg(&dir);
    if *detach {
        c.arg("-d");
    }
    let status = c
        .arg(id)
        .status()
        .with_context(|| format!("run {}", rt.display()));
    let started = matches!(&status, Ok(s) if s.success());
    if *detach && started {
        if let Some(a) = network::attachment(&dir)? {
            println!("{}", serde_json::to_string_pretty(&a.summary())?);
        }
    } else {
        network::detach(&dir).with_context(|| format!("release the network of {id}"))?;
    }
    if *rm {
        remove_bundle(&root, &dir)?;
    }
    Ok(crate::exit_code(status?))
}

/// `rt state ID`'s status, None when rt has no such container.
fn status(rt: &Path, id: &str) -> Result<Option<String>> {
    let out = Command::new(rt)
        .args(["state", id])
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("run {}", rt.display()))?;
    if !out.status.success() {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("rt state's output is not JSON")?;
    Ok(v["status"].as_str().map(String::from))
}

fn rt_do(rt: &Path, args: &[&str]) -> Result<()> {
    let s = Command::new(rt)
        .args(args)
        .status()
        .with_context(|| format!("run {}", rt.display()))?;
    if !s.success() {
        bail!("rt {} failed ({s})", args.join(" "));
    }
    Ok(())
}

/// `stop ID`: the image's stop signal (else SIGTERM), SIGKILL after
/// `wait`, `rt delete`, the network released; with `rm` the bundle
/// removed too.
pub fn stop(root: Option<PathBuf>, id: &str, wait: u64, rm: bool) -> Result<()> {
    let root = store_root(root)?;
    let dir = run_dir(&root, id);
    let rt = rt_binary()?;
    if !dir.exists() && status(&rt, id)?.is_none() {
        bail!("no container {id} (no bundle {})", dir.display());
    }
    match status(&rt, id)?.as_deref() {
        None => {}
        Some("stopped") => rt_do(&rt, &["delete", id])?,
        Some(_) => {
            let config: serde_json::Value = std::fs::read(dir.join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let signal = config["annotations"]["org.opencontainers.image.stopSignal"]
                .as_str()
                .unwrap_or("SIGTERM")
                .to_string();
            // A paused container takes no signal: rt delete --force kills it.
            let _ = rt_do(&rt, &["kill", id, &signal]);
            let until = Instant::now() + Duration::from_secs(wait);
            while Instant::now() < until && status(&rt, id)?.as_deref() != Some("stopped") {
                std::thread::sleep(Duration::from_millis(100));
            }
            rt_do(&rt, &["delete", "--force", id])?;
        }
    }
    network::detach(&dir).with_context(|| format!("release the network of {id}"))?;
    if rm && dir.exists() {
        remove_bundle(&root, &dir)?;
    }
    println!("{id}");
    Ok(())
}

/// `ps`: the containers `run` made, with their status, address and ports.
pub fn ps(root: Option<PathBuf>, json: bool) -> Result<()> {
    let store = Store::open(&store_root(root)?)?;
    let rt = rt_binary()?;
    let dir = store.root().join("containers");
    let mut ids: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort();
    let mut rows = Vec::new();
    for id in ids {
        let bundle = run_dir(store.root(), &id);
        let image = store
            .bundle(&bundle)?
            .map(|b| rt_image::reference::familiar(&b.image))
            .unwrap_or_else(|| "-".into());
        let status = status(&rt, &id)?.unwrap_or_else(|| "-".into());
        let net = network::attachment(&bundle)?;
        let mut v = net
            .as_ref()
            .map(|a| a.summary())
            .unwrap_or_else(|| serde_json::json!({"id": id, "ip": null, "ports": []}));
        v["image"] = serde_json::json!(image);
        v["status"] = serde_json::json!(status);
        v["bundle"] = serde_json::json!(bundle);
        rows.push(v);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<30} {:<10} {:<15} PORTS",
        "ID", "IMAGE", "STATUS", "IP"
    );
    for v in rows {
        let ports: Vec<&str> = v["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .collect();
        println!(
            "{:<20} {:<30} {:<10} {:<15} {}",
            v["id"].as_str().unwrap_or("-"),
            v["image"].as_str().unwrap_or("-"),
            v["status"].as_str().unwrap_or("-"),
            v["ip"].as_str().unwrap_or("-"),
            ports.join(", ")
        );
    }
    Ok(())
}
