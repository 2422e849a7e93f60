//! The sandbox's state across restarts: its books (see [`Books`]) in a JSON file, read once at
//! start and written whole after every change, so that an organization whose keys a database
//! holds still answers to those keys after a restart.
//!
//! A write goes to a temporary file in the same folder (mode 0600: the file holds the sandbox's
//! fake API keys and bank accounts), is flushed to disk, and is renamed over the old file, so the
//! file is always either the previous state or the new one. Writes are serialized and each one
//! takes the books as they are when it starts, so a slow write never overwrites a newer one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::StateFile;
use crate::state::{Books, World};

/// The layout of the file; a file of another format is refused rather than misread.
const FORMAT: u32 = 1;

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("reading the sandbox state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the sandbox state file {} cannot be read as a sandbox state ({source}); delete it to \
         start the sandbox empty (`make db/reset` clears the database and the sandbox together)",
        path.display()
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the sandbox state file {} has format {found}, this sandbox reads format {FORMAT}; delete \
         it to start the sandbox empty",
        path.display()
    )]
    Format { path: PathBuf, found: u32 },
    #[error("writing the sandbox state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("encoding the sandbox state: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The file: its format, its owner, how many times it was loaded, and the books.
#[derive(Serialize, Deserialize)]
struct Saved<O, B> {
    format: u32,
    owner: O,
    starts: u64,
    books: B,
}

/// The fields read before the books, to refuse another format or set another owner's file aside.
#[derive(Deserialize)]
struct Probe {
    format: u32,
    #[serde(default)]
    owner: Option<String>,
}

/// What was found at start.
pub(crate) enum Loaded {
    /// No file yet.
    Fresh,
    /// A file of another owner, renamed to this path.
    SetAside(PathBuf),
    /// Books saved by an earlier sandbox, and how many times they have now been loaded.
    Restored { books: Box<Books>, starts: u64 },
}

/// Reads the state file, if there is one.
pub(crate) fn load(file: &StateFile) -> Result<Loaded, StateFileError> {
    let path = &file.path;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Fresh),
        Err(source) => {
            return Err(StateFileError::Read {
                path: path.clone(),
                source,
            });
        }
    };
    let parse = |source| StateFileError::Parse {
        path: path.clone(),
        source,
    };
    let probe: Probe = serde_json::from_slice(&bytes).map_err(parse)?;
    if probe.format != FORMAT {
        return Err(StateFileError::Format {
            path: path.clone(),
            found: probe.format,
        });
    }
    if let (Some(wanted), Some(found)) = (&file.owner, &probe.owner)
        && wanted != found
    {
        let aside = set_aside_path(path);
        std::fs::rename(path, &aside).map_err(|source| StateFileError::Write {
            path: path.clone(),
            source,
        })?;
        return Ok(Loaded::SetAside(aside));
    }
    let saved: Saved<Option<String>, Books> = serde_json::from_slice(&bytes).map_err(parse)?;
    Ok(Loaded::Restored {
        books: Box::new(saved.books),
        starts: saved.starts.saturating_add(1),
    })
}

/// `state.json` → `state.json.20250609T101500Z.set-aside`, next to it.
fn set_aside_path(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{stamp}.set-aside"));
    path.with_file_name(name)
}

/// Writes the books of one sandbox to its state file.
pub(crate) struct Store {
    file: StateFile,
    /// The world's change count at the last write.
    saved: AtomicU64,
    /// Held for a whole write, so writes happen one at a time and in order.
    writing: Mutex<()>,
}

impl Store {
    pub(crate) fn new(file: StateFile) -> Store {
        Store {
            file,
            saved: AtomicU64::new(0),
            writing: Mutex::new(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }

    /// Whether the world has changes not yet written.
    pub(crate) fn unsaved(&self, world: &World) -> bool {
        world.changes() != self.saved.load(Ordering::SeqCst)
    }

    /// Writes the world's books when they changed since the last write (always with `force`,
    /// which also saves the call ledger's latest entries). The world's lock is held only while
    /// the books are encoded, never during the file's IO.
    pub(crate) fn save(&self, force: bool, world: &Mutex<World>) -> Result<(), StateFileError> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let (changes, bytes) = {
            let world = world.lock().unwrap_or_else(|e| e.into_inner());
            if !force && !self.unsaved(&world) {
                return Ok(());
            }
            let saved = Saved {
                format: FORMAT,
                owner: self.file.owner.as_deref(),
                starts: world.starts(),
                books: world.books(),
            };
            let bytes = serde_json::to_vec(&saved).map_err(StateFileError::Encode)?;
            (world.changes(), bytes)
        };
        self.write(&bytes).map_err(|source| StateFileError::Write {
            path: self.file.path.clone(),
            source,
        })?;
        self.saved.store(changes, Ordering::SeqCst);
        Ok(())
    }

    /// Replaces the file atomically: a temporary file (created 0600) in the same folder, flushed,
    /// then renamed over it.
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let path = &self.file.path;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let mut temporary = tempfile::Builder::new()
            .prefix(".sandbox-state-")
            .tempfile_in(dir)?;
        temporary.write_all(bytes)?;
        temporary.as_file().sync_all()?;
        temporary.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}
