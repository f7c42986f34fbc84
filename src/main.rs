fn main() {
    std::process::exit(sbx::main());
}
