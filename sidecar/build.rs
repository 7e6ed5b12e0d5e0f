//! Compiles `proto/kserve/*.proto` into the Triton gRPC client, `proto/envoy/rls.proto` and
//! `proto/envoy/als.proto` into the rate limit and access log services Envoy calls, and
//! `proto/airouter/v1/router.proto` into the gRPC client API the sidecar serves, with protox
//! (pure Rust), so the build needs no `protoc`. The client API's descriptor set, its imports
//! included and its `google.api.http` options kept, is written to `OUT_DIR` as
//! `airouter_v1_descriptor.bin`: server reflection serves it and `airouter envoy` embeds it for
//! Envoy's gRPC-JSON transcoder.

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
    client_api(&root)
}

/// The gRPC client API: server code, and the encoded descriptor set beside it.
fn client_api(root: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let router = "airouter/v1/router.proto";
    for f in [
        router,
        "google/api/annotations.proto",
        "google/api/http.proto",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let mut compiler = protox::Compiler::new([root])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_file(router)?;
    // Encoded by protox rather than from the prost types, which would drop the
    // `google.api.http` method options (an extension) the transcoder reads.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("airouter_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
