//! rt-image: pull, push, import, list and commit images, log in to
//! registries, and make bundles for `rt`.
//! A thin command line over the `rt_image` library.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};

#[path = "rt-image/containers.rs"]
mod containers;

use containers::{run_dir, start, Start};
use rt_image::auth;
use rt_image::bundle::{self, Options as BundleOptions};
use rt_image::cni::{self, PortMapping};
use rt_image::digest::Digest;
use rt_image::image::Image;
use rt_image::login::{self, Verified};
use rt_image::network::{self, Mode};
use rt_image::platform::Platform;
use rt_image::pull::{self, Event};
use rt_image::push;
use rt_image::reference::{self, familiar};
use rt_image::runtime_config::Overrides;
use rt_image::store::{ImageRecord, Store};

#[derive(Parser)]
#[command(
    name = "rt-image",
    version,
    about = "Images for rt: pull, push, import, list, commit, and make bundles"
)]
struct Cli {
    /// The image store [default: /var/lib/rt/images; without root
    /// $XDG_DATA_HOME/rt/images, or ~/.local/share/rt/images]
    #[arg(long, global = true, env = "RT_IMAGE_ROOT")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull an image from a registry (`alpine:3.20` = docker.io/library/alpine:3.20).
    Pull {
        reference: String,
        /// os/arch[/variant] to choose from a multi-platform image.
        #[arg(long)]
        platform: Option<String>,
        /// Talk plain HTTP to the registry (one on loopback).
        #[arg(long)]
        plain_http: bool,
        /// Accept any TLS certificate.
        #[arg(long)]
        insecure: bool,
    },
    /// Push a stored image to a registry: `push REF [DEST]` (DEST defaults to REF).
    Push {
        reference: String,
        destination: Option<String>,
        /// Talk plain HTTP to the registry (one on loopback).
        #[arg(long)]
        plain_http: bool,
        /// Accept any TLS certificate.
        #[arg(long)]
        insecure: bool,
    },
    /// Give a stored image another name: `tag SRC DEST`.
    Tag { source: String, target: String },
    /// Check credentials against a registry and store them in the docker
    /// config ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
    Login {
        /// The registry (docker.io when none).
        registry: Option<String>,
        #[arg(short, long)]
        username: Option<String>,
        /// Read the password from stdin (else it is asked for without echo).
        #[arg(long)]
        password_stdin: bool,
        /// Talk plain HTTP to the registry (one on loopback).
        #[arg(long)]
        plain_http: bool,
        /// Accept any TLS certificate.
        #[arg(long)]
        insecure: bool,
    },
    /// Remove a registry's credentials from the docker config.
    Logout {
        /// The registry (docker.io when none).
        registry: Option<String>,
    },
    /// Import an OCI image layout (directory or tar) or a docker-archive tarball.
    Import {
        path: PathBuf,
        /// The name to store the image under.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        platform: Option<String>,
    },
    /// List the stored images.
    #[command(visible_alias = "images", alias = "ls")]
    List,
    /// Config, layers and history of an image.
    Inspect { reference: String },
    /// Remove image names (their blobs go with `prune`).
    #[command(visible_alias = "rmi")]
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Remove blobs and layers no image or bundle uses.
    Prune,
    /// Store a bundle's changes (its upper directory) as a new image.
    Commit {
        bundle: PathBuf,
        reference: String,
        /// The history comment.
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// Make a bundle of an image and run it with `rt run`: `run REF ID
    /// [-- ARGS...]` (the bundle is STORE/containers/ID).
    Run {
        reference: String,
        /// The container's id (rt's).
        id: String,
        /// Give the process a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Detach (`rt run -d`).
        #[arg(short, long)]
        detach: bool,
        /// Remove the bundle when the container has exited (not with -d).
        #[arg(long, conflicts_with = "detach")]
        rm: bool,
        /// Copy the layers instead of an overlay.
        #[arg(long)]
        copy: bool,
        /// Publish a port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]
        /// (implies --network bridge).
        #[arg(short, long = "publish", value_parser = cni::parse_port)]
        publish: Vec<PortMapping>,
        /// none (loopback only, the default), host, or bridge (the CNI
        /// network `rt`, 10.89.0.0/24 on bridge rt0; needs root).
        #[arg(long)]
        network: Option<Mode>,
        /// Replace the image's Cmd.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Stop a container `run` started: its stop signal, SIGKILL after
    /// --time, `rt delete`, its network released.
    Stop {
        id: String,
        /// Seconds to wait before SIGKILL.
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        /// Remove its bundle too.
        #[arg(long)]
        rm: bool,
    },
    /// The containers `run` made: status, IP address, published ports.
    Ps {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a bundle for `rt` from an image: `bundle REF DIR [-- ARGS...]`,
    /// or remove one: `bundle --remove DIR`.
    Bundle {
        /// REF DIR (or just DIR with --remove).
        #[arg(required = true, num_args = 1..=2)]
        operands: Vec<String>,
        /// Unmount and remove the bundle DIR.
        #[arg(long, conflicts_with_all = ["name", "copy", "tty"])]
        remove: bool,
        /// The container's hostname.
        #[arg(long)]
        name: Option<String>,
        /// Copy the layers instead of mounting an overlay.
        #[arg(long)]
        copy: bool,
        /// Give the process a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Replace the image's Cmd.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // A plain user with subuid ranges: the command runs in rt-image's own
    // user namespace, where layers get their owners (rt_image::userns).
    if let Err(e) = rt_image::userns::enter_if_asked() {
        eprintln!("rt-image: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let done = |r: Result<ExitCode>| {
        r.unwrap_or_else(|e| {
            eprintln!("rt-image: {e:#}");
            ExitCode::FAILURE
        })
    };
    let root = cli.root.clone();
    let started = match &cli.cmd {
        Cmd::Run { id, detach, rm, .. } => Some(Start {
            id: id.clone(),
            detach: *detach,
            rm: *rm,
        }),
        _ => None,
    };
    // rt's containers are handled from out here, where `run` starts them.
    match &cli.cmd {
        Cmd::Stop { id, time, rm } => {
            return done(containers::stop(root, id, *time, *rm).map(|()| ExitCode::SUCCESS))
        }
        Cmd::Ps { json } => return done(containers::ps(root, *json).map(|()| ExitCode::SUCCESS)),
        _ => {}
    }
    match rt_image::userns::run_inside() {
        Ok(None) => {}
        // `run`: the bundle was made inside; rt runs it from out here,
        // where its user namespace maps the same ids.
        Ok(Some(status)) => {
            return match started {
                Some(s) if status.success() => done(start(root, &s)),
                _ => exit_code(status),
            }
        }
        Err(e) => {
            eprintln!("rt-image: {e}");
            return ExitCode::FAILURE;
        }
    }
    match (run(cli), started) {
        (Ok(()), Some(s)) if !rt_image::userns::inside() => done(start(root, &s)),
        (r, _) => done(r.map(|()| ExitCode::SUCCESS)),
    }
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// A bundle, with what it does not do said on stderr.
fn make_bundle(
    store: &Store,
    image: &str,
    dir: &Path,
    opts: &BundleOptions,
) -> Result<bundle::Made> {
    let made = bundle::make(store, image, dir, opts)?;
    if let Some(why) = &made.copied {
        eprintln!("rt-image: rootfs is a copy: {why}");
    }
    for n in &made.notes {
        eprintln!("rt-image: note: {n}");
    }
    Ok(made)
}

fn platform(p: Option<String>) -> Result<Platform> {
    Ok(match p {
        Some(p) => p.parse()?,
        None => Platform::host(),
    })
}

fn run(cli: Cli) -> Result<()> {
    // Credentials are the user's, not the store's: no store is opened (or
    // made) for them.
    let cmd = match cli.cmd {
        Cmd::Login {
            registry,
            username,
            password_stdin,
            plain_http,
            insecure,
        } => {
            return login_cmd(
                registry.as_deref(),
                username,
                password_stdin,
                plain_http,
                insecure,
            )
        }
        Cmd::Logout { registry } => {
            let registry = login::registry_name(registry.as_deref());
            let path = docker_config()?;
            if auth::remove_credentials(&path, &registry)? {
                println!("Removing login credentials for {registry}");
            } else {
                println!("Not logged in to {registry}");
            }
            return Ok(());
        }
        other => other,
    };
    let root = match &cli.root {
        Some(r) => r.clone(),
        None => rt_image::store::default_root()?,
    };
    let store = Store::open(&root)?;
    match cmd {
        Cmd::Pull {
            reference,
            platform: p,
            plain_http,
            insecure,
        } => pull_cmd(&store, &reference, platform(p)?, plain_http, insecure),
        Cmd::Login { .. } | Cmd::Logout { .. } => unreachable!("handled above"),
        Cmd::Push {
            reference,
            destination,
            plain_http,
            insecure,
        } => push_cmd(
            &store,
            &reference,
            destination.as_deref(),
            plain_http,
            insecure,
        ),
        Cmd::Tag { source, target } => {
            rt_image::tag::tag(&store, &source, &target)?;
            Ok(())
        }
        Cmd::Import {
            path,
            name,
            platform: p,
        } => {
            let done = rt_image::import::import(&store, &path, name.as_deref(), &platform(p)?)?;
            for i in done {
                for n in &i.names {
                    println!("Loaded image: {} ({})", familiar(n), i.config.short());
                }
            }
            Ok(())
        }
        Cmd::List => list(&store),
        Cmd::Inspect { reference } => inspect(&store, &reference),
        Cmd::Rm { references } => {
            let _lock = store.lock()?;
            for r in references {
                let images = store.images()?;
                let (name, _) = reference::resolve(&images, &r, |_| None)?;
                let name = name.clone();
                store.untag(&name)?;
                println!("Untagged: {}", familiar(&name));
            }
            Ok(())
        }
        Cmd::Prune => {
            let _lock = store.lock()?;
            let r = rt_image::gc::prune(&store)?;
            println!(
                "Deleted {} blobs and {} layers, reclaimed {}",
                r.blobs.len(),
                r.layers.len(),
                HumanBytes(r.bytes)
            );
            Ok(())
        }
        Cmd::Commit {
            bundle,
            reference,
            message,
        } => {
            let c = rt_image::commit::commit(&store, &bundle, &reference, &message)?;
            println!("{} ({})", familiar(&c.name), c.config);
            Ok(())
        }
        Cmd::Stop { .. } | Cmd::Ps { .. } => unreachable!("handled in main"),
        Cmd::Run {
            reference,
            id,
            tty,
            copy,
            publish,
            network,
            args,
            ..
        } => {
            rt::state::validate_id(&id).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mode = network::mode(network, &publish)?;
            network::preflight(mode)?;
            let dir = run_dir(store.root(), &id);
            std::fs::create_dir_all(dir.parent().expect("a parent"))
                .with_context(|| format!("create {}", store.root().join("containers").display()))?;
            let opts = BundleOptions {
                copy,
                overrides: Overrides {
                    args,
                    hostname: Some(id.clone()),
                    terminal: tty,
                },
            };
            make_bundle(&store, &reference, &dir, &opts)?;
            // A network that cannot be had leaves no bundle behind.
            if let Err(e) = network::attach(&dir, &id, mode, &publish) {
                let _ = rt_image::bundle::remove(&store, &dir);
                return Err(e.into());
            }
            Ok(())
        }
        Cmd::Bundle {
            operands,
            remove,
            name,
            copy,
            tty,
            args,
        } => {
            if remove {
                let [dir] = &operands[..] else {
                    bail!("bundle --remove takes one DIR");
                };
                bundle::remove(&store, Path::new(dir))?;
                println!("Removed bundle {dir}");
                return Ok(());
            }
            let [image, dir] = &operands[..] else {
                bail!("bundle takes REF DIR");
            };
            let opts = BundleOptions {
                copy,
                overrides: Overrides {
                    args,
                    hostname: name,
                    terminal: tty,
                },
            };
            let made = make_bundle(&store, image, Path::new(dir), &opts)?;
            println!(
                "Bundle {} from {}: rt run -b {} ID",
                made.dir.display(),
                made.image,
                made.dir.display()
            );
            Ok(())
        }
    }
}

fn pull_cmd(
    store: &Store,
    reference: &str,
    platform: Platform,
    plain_http: bool,
    insecure: bool,
) -> Result<()> {
    let opts = pull::Options {
        platform,
        plain_http,
        insecure,
        ..Default::default()
    };
    let mut bars = Progress::new();
    let mut on_event = |e: Event| match e {
        Event::Resolved { reference, digest } => {
            bars.say(format!("{reference}: resolved to {digest}"))
        }
        Event::Exists { digest } => bars.say(format!("{}: Already exists", digest.short())),
        Event::Start { digest, size } => bars.start(digest, size, "Downloading"),
        Event::Progress { digest, bytes } => bars.advance(digest, bytes),
        Event::Done { digest } => bars.done(digest, "Pull complete"),
        Event::Unpacking { digest } if !bars.tty => println!("{}: Unpacking", digest.short()),
        Event::Unpacking { .. } => {}
    };
    let p = pull::pull(store, reference, &opts, &mut on_event)?;
    println!("Digest: {}", p.manifest);
    println!(
        "Status: {} {}",
        if p.downloaded.is_empty() {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        },
        familiar(&p.name)
    );
    Ok(())
}

/// Per-blob progress of a pull or push: bars on a terminal, plain lines
/// (as in a log) otherwise.
struct Progress {
    tty: bool,
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
            multi: MultiProgress::new(),
            bars: HashMap::new(),
            style: ProgressStyle::with_template("{prefix}: {bar:30} {bytes}/{total_bytes} {msg}")
                .expect("valid template"),
        }
    }

    /// A line; on a terminal it goes through the bars' owner so that
    /// lines and bars stay intact.
    fn say(&self, line: String) {
        if self.tty {
            let _ = self.multi.println(&line);
        } else {
            println!("{line}");
        }
    }

    fn start(&mut self, digest: &Digest, size: u64, verb: &str) {
        if !self.tty {
            println!("{}: {verb} {}", digest.short(), HumanBytes(size));
            return;
        }
        let b = self.multi.add(ProgressBar::new(size));
        b.set_style(self.style.clone());
        b.set_prefix(digest.short().to_string());
        self.bars.insert(digest.to_string(), b);
    }

    fn advance(&self, digest: &Digest, bytes: u64) {
        if let Some(b) = self.bars.get(digest.as_ref()) {
            b.inc(bytes);
        }
    }

    /// A finished bar gives way to a plain line, as in the log.
    fn done(&mut self, digest: &Digest, word: &str) {
        if let Some(b) = self.bars.remove(digest.as_ref()) {
            b.finish_and_clear();
        }
        self.say(format!("{}: {word}", digest.short()));
    }

    fn clear(&mut self) {
        for (_, b) in self.bars.drain() {
            b.finish_and_clear();
        }
    }
}

fn docker_config() -> Result<PathBuf> {
    auth::default_config_path()
        .context("neither DOCKER_CONFIG nor HOME is set: no docker config to use")
}

fn push_cmd(
    store: &Store,
    reference: &str,
    dest: Option<&str>,
    plain_http: bool,
    insecure: bool,
) -> Result<()> {
    let opts = push::Options {
        plain_http,
        insecure,
        ..Default::default()
    };
    let mut bars = Progress::new();
    let mut on_event = |e: push::Event| match e {
        push::Event::Target { repository } => {
            bars.say(format!("The push refers to repository [{repository}]"))
        }
        push::Event::PartialIndex { index, missing } => eprintln!(
            "rt-image: note: index {} not pushed: the store lacks {}; pushing this platform alone",
            index.short(),
            missing.join(", ")
        ),
        push::Event::Exists { digest } => {
            bars.say(format!("{}: Layer already exists", digest.short()))
        }
        push::Event::Mounted { digest, from } => {
            bars.say(format!("{}: Mounted from {from}", digest.short()))
        }
        push::Event::Start { digest, size } => bars.start(digest, size, "Pushing"),
        push::Event::Progress { digest, bytes } => bars.advance(digest, bytes),
        push::Event::Done { digest } => bars.done(digest, "Pushed"),
        push::Event::Platform {
            platform,
            digest,
            size,
        } => bars.say(format!("{platform}: digest: {digest} size: {size}")),
    };
    let result = push::push(store, reference, dest, &opts, &mut on_event);
    // Bars of an upload that failed go before the error line.
    bars.clear();
    let p = result?;
    let tag = p
        .reference
        .rsplit_once(':')
        .map(|(_, t)| t)
        .unwrap_or("latest");
    println!("{tag}: digest: {} size: {}", p.digest, p.size);
    Ok(())
}

/// Reads a password from the terminal with echo off (restored even when
/// reading fails).
fn prompt_password(prompt: &str) -> Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask for the password: use --password-stdin")?;
    let old = termios::tcgetattr(&tty).context("reading the terminal's settings")?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Echo off before the prompt shows, so nothing typed after it echoes.
    termios::tcsetattr(&tty, SetArg::TCSAFLUSH, &quiet).context("turning off echo")?;
    if let Err(e) = (&tty).write_all(prompt.as_bytes()) {
        let _ = termios::tcsetattr(&tty, SetArg::TCSANOW, &old);
        return Err(e.into());
    }
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    termios::tcsetattr(&tty, SetArg::TCSANOW, &old).context("restoring the terminal")?;
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn login_cmd(
    registry: Option<&str>,
    username: Option<String>,
    password_stdin: bool,
    plain_http: bool,
    insecure: bool,
) -> Result<()> {
    use std::io::{BufRead, Write};
    let registry = login::registry_name(registry);
    let path = docker_config()?;
    let user = match username {
        Some(u) => u,
        None if password_stdin => bail!("--password-stdin needs --username"),
        None => {
            let tty = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/tty")
                .context("no terminal to ask for the user name: use --username")?;
            (&tty).write_all(b"Username: ")?;
            let mut line = String::new();
            std::io::BufReader::new(&tty).read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if user.is_empty() {
        bail!("a user name is needed");
    }
    let password = if password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .context("reading the password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        prompt_password("Password: ")?
    };
    if password.is_empty() {
        bail!("a password is needed");
    }
    let opts = login::Options {
        plain_http,
        insecure,
    };
    let how = login::verify(&registry, &user, &password, &opts)?;
    auth::store_credentials(&path, &registry, &user, &password)?;
    match how {
        Verified::NotRequired => println!(
            "Login Succeeded (note: {registry} asks for no credentials; stored in {})",
            path.display()
        ),
        Verified::Basic | Verified::Token => {
            println!("Login Succeeded (credentials stored in {})", path.display())
        }
    }
    Ok(())
}

fn load_all(store: &Store) -> Result<Vec<(String, ImageRecord, Image)>> {
    let mut out = Vec::new();
    for (name, rec) in store.images()? {
        let img = Image::load(store, &name, &rec).with_context(|| format!("image {name}"))?;
        out.push((name, rec, img));
    }
    Ok(out)
}

fn list(store: &Store) -> Result<()> {
    println!("{:<50} {:<14} {:>10}  CREATED", "NAME", "IMAGE ID", "SIZE");
    for (name, _, img) in load_all(store)? {
        println!(
            "{:<50} {:<14} {:>10}  {}",
            familiar(&name),
            img.config_digest.short(),
            HumanBytes(img.size()).to_string(),
            img.config.created().as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn inspect(store: &Store, input: &str) -> Result<()> {
    let images = store.images()?;
    let config_of = |r: &ImageRecord| {
        Image::load(store, "", r)
            .ok()
            .map(|i| i.config_digest.to_string())
    };
    let (name, rec) = reference::resolve(&images, input, config_of)?;
    let img = Image::load(store, name, rec)?;
    let c = &img.config;
    println!("Name:         {}", familiar(name));
    println!(
        "Manifest:     {} ({})",
        img.manifest_digest, img.manifest_media_type
    );
    if let Some(i) = &rec.index {
        println!("Index:        {i}");
    }
    println!("Id (config):  {}", img.config_digest);
    println!("Platform:     {}/{}", c.os(), c.architecture());
    println!("Created:      {}", c.created().as_deref().unwrap_or("-"));
    println!("Size:         {}", HumanBytes(img.size()));
    println!("Config:");
    let cfg = serde_json::to_string_pretty(&c.config())?;
    for l in cfg.lines() {
        println!("  {l}");
    }
    println!("Layers:");
    for l in &img.layers {
        println!(
            "  {}  {:>10}  {}",
            l.digest,
            HumanBytes(l.size).to_string(),
            l.media_type
        );
    }
    println!("History:");
    println!(
        "  {:<14} {:<26} {:>10}  CREATED BY",
        "LAYER", "CREATED", "SIZE"
    );
    // History runs oldest first; entries that made no layer have none.
    let mut layers = img.layers.iter();
    let mut rows = Vec::new();
    for h in c.history().clone().unwrap_or_default() {
        let (id, size) = if h.empty_layer().unwrap_or(false) {
            ("<missing>".to_string(), "0B".to_string())
        } else {
            match layers.next() {
                Some(l) => (l.digest.short().to_string(), HumanBytes(l.size).to_string()),
                None => ("<missing>".to_string(), "-".to_string()),
            }
        };
        rows.push(format!(
            "  {:<14} {:<26} {:>10}  {}",
            id,
            h.created().as_deref().unwrap_or("-"),
            size,
            h.created_by().as_deref().unwrap_or("")
        ));
    }
    // Newest first, as `docker history` shows it.
    for r in rows.iter().rev() {
        println!("{r}");
    }
    Ok(())
}
