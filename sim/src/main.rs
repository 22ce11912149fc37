//! `squall-sim`: see `squall_sim::cli`.

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
