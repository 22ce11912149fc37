//! `squall-sim`: see `squall_sim::cli`.

/// A whole simulated cluster allocates and frees small buffers at a high rate on one thread:
/// mimalloc's thread-local free lists serve that markedly faster than the system allocator.
/// Allocation addresses never reach the simulation's course, so runs stay deterministic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if !cfg!(madsim) {
        eprintln!("squall-sim needs the simulator build: RUSTFLAGS=\"--cfg madsim\" (scripts/sim builds and runs it)");
        std::process::exit(2);
    }
    match squall_sim::cli::main() {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("squall-sim: {error:#}");
            std::process::exit(2);
        }
    }
}
