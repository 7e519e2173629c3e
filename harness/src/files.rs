//! Copying folders (run directories into failure bundles, the etcd template).

use std::path::Path;

/// Copies `from` into `to` (created), skipping entries named in `skip`.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst, skip)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        }
        // Sockets and pipes (pilot-agent's XDS and SDS sockets) are not copied.
    }
    Ok(())
}
