//! `handler`: the Azure Functions custom handler of the platform, and its local runtime.
//! See [`functions::cli`] for the commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    functions::cli::main()
}
