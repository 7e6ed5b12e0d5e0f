//! Compiles `proto/kserve/*.proto` into the Triton gRPC client, and `proto/envoy/rls.proto` and
//! `proto/envoy/als.proto` into the rate limit and access log services Envoy calls, with protox
//! (pure Rust), so the build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let files = ["kserve/grpc_service.proto", "kserve/model_config.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    for service in ["envoy/rls.proto", "envoy/als.proto"] {
        println!("cargo:rerun-if-changed={}", root.join(service).display());
        let fds = protox::compile([service], [&root])?;
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(false)
            .compile_fds(fds)?;
    }
    Ok(())
}
