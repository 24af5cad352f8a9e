// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "defacer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "defacer", targets: ["Daemon"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
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
        // Linux calls that Swift's Glibc module does not show (renameat2, RENAME_NOREPLACE).
        .target(name: "CLinux"),
        // OpenBLAS (Debian libopenblas-dev) for the convolutions' matrix products.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas"),
        // libsystemd (Debian libsystemd-dev): sd_notify and sd_journal_sendv for the daemon.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd"),
        // zlib, for the PNG pictures.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .target(
            name: "Engine",
            dependencies: ["CNifti", "CLinux", "COpenBLAS", "CZlib"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "Daemon",
            dependencies: [
                "Engine", "CLinux", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "DaemonTests",
            dependencies: ["Daemon", "Engine", "CZlib"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
