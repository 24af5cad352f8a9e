// swift-tools-version: 6.1
import PackageDescription

// The Winograd tile transforms: built once for any x86-64 (or other) processor and, on x86-64,
// once more from the same files (symbolic links) for AVX2; Engine picks one when it starts.
let engineDependencies: [Target.Dependency] = {
    var list: [Target.Dependency] = [
        "CNifti", "CLinux", "COpenBLAS", "CZlib", "TileTransforms",
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Crypto", package: "swift-crypto"),
    ]
    #if arch(x86_64)
    list.append("TileTransformsAVX2")
    #endif
    return list
}()
let tileTransformTargets: [Target] = {
    var list: [Target] = [.target(name: "TileTransforms", dependencies: ["CLinux"], swiftSettings: [.swiftLanguageMode(.v6)])]
    #if arch(x86_64)
    list.append(.target(name: "TileTransformsAVX2", dependencies: ["CLinux"],
                        swiftSettings: [.swiftLanguageMode(.v6), .unsafeFlags(["-Xcc", "-mavx2"])]))
    #endif
    return list
}()

let package = Package(
    name: "defacer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "defacer", targets: ["DefacerCLI"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "DICOM", targets: ["DICOM"]),
        .library(name: "DropFolders", targets: ["DropFolders"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // libnifti2 (Debian libnifti2-dev) behind a small C API of our own: its headers
        // include <znzlib.h> and need /usr/include/nifti on the search path.
        .target(
            name: "CNifti",
            cSettings: [.unsafeFlags(["-I/usr/include/nifti"])],
            linkerSettings: [
                .linkedLibrary("nifti2"), .linkedLibrary("znz"),
                .linkedLibrary("z"), .linkedLibrary("m"),
            ]
        ),
        // Linux calls that Swift's Glibc module does not show (renameat2, RENAME_NOREPLACE), the
        // processor's AVX2 check and a cache prefetch hint.
        .target(name: "CLinux"),
        // OpenBLAS (Debian libopenblas-dev) for the convolutions' matrix products.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas"),
        // libsystemd (Debian libsystemd-dev): sd_notify and sd_journal_sendv for the daemon.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd"),
        // zlib, for the PNG pictures.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        // The inference engine, NIfTI, defacing, and the durable-file layer every writer uses.
        .target(
            name: "Engine",
            dependencies: engineDependencies,
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // DICOM: header reading, folder inventory, conversion with dcm2niix, anonymisation, the study defacer.
        .target(
            name: "DICOM",
            dependencies: ["Engine", "CLinux"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The drop-folder service: configuration, watching, durable jobs, systemd, the service loop.
        .target(
            name: "DropFolders",
            dependencies: [
                "Engine", "DICOM", "CLinux", "CSystemd",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The `defacer` command line.
        .executableTarget(
            name: "DefacerCLI",
            dependencies: [
                "Engine", "DICOM", "DropFolders", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Helpers the DICOM, drop-folder and command-line tests share: the `defacer` process,
        // drop-folder layouts, the daemon harness and the DICOM samples.
        .target(
            name: "TestSupport",
            dependencies: ["Engine", "CZlib"],
            path: "Tests/TestSupport",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "DICOMTests",
            dependencies: ["DICOM", "DropFolders", "Engine", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "DropFolderTests",
            dependencies: ["DropFolders", "DICOM", "Engine", "TestSupport", "DefacerCLI"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["Engine", "TestSupport", "DefacerCLI"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ] + tileTransformTargets
)
