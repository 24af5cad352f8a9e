import DICOM
import Engine
import Foundation
import Glibc

/// Watching and settling: inotify events and listings add names to follow; a file is taken
/// once its size, mtime and inode have not changed for `settle_seconds` and it parses to the
/// end; a DICOM folder once its snapshot has not changed for `dicom_settle_seconds` (or it
/// holds the marker file). Taken names join the queue (`JobQueue.swift`).
extension DropFolderService {
    func handle(_ events: [InotifyWatcher.Event]) {
        guard !draining else { return }
        for event in events {
            if event.isOverflow {
                log.log(.overflow, "inotify queue overflowed: listing every inbox again")
                rescanAll(reason: "overflow")
                continue
            }
            guard let path = watchToInbox[event.watch] else { continue }
            if event.watchEnded {
                if event.mask & UInt32(IN_IGNORED) != 0 || event.mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT) != 0 {
                    watchToInbox[event.watch] = nil
                    inboxes[path]?.watch = nil
                    if let name = inboxes[path]?.config.name, DropEntry(path: path) == nil {
                        log.log(.folderProblem, "inbox \(name): the folder is gone; watching again when it returns", [("INBOX", name)])
                    }
                }
                continue
            }
            let key = path + "/" + event.name
            if event.nameLeft {
                if let c = candidates[key], c.state != .running { candidates[key] = nil }
                continue
            }
            note(inbox: path, name: event.name)
        }
        startJobs()
        publishStatus()
    }

    /// Starts following a name (or notes that it changed). Returns whether it is new.
    @discardableResult
    func note(inbox: String, name: String) -> Bool {
        let key = inbox + "/" + name
        guard let entry = DropEntry(path: key) else { return false }
        let isDicom = entry.kind == .directory && isDicomFolder(inbox: inbox, name: name)
        guard isDicom || DropNames.isCandidate(name, kind: entry.kind) else { return false }
        let now = monotonicSeconds()
        if var c = candidates[key] {
            if c.state == .settling && c.entry != entry {
                c.entry = entry
                c.lastChange = now
                c.parse = .unchecked
                candidates[key] = c
            }
            return false
        }
        guard candidates.count < Self.maxTracked else {
            if !trackingFull {
                trackingFull = true
                log.log(.folderProblem, "more than \(Self.maxTracked) files waiting: the rest stay in the inboxes until the queue shortens")
            }
            return false
        }
        candidates[key] = Candidate(inbox: inbox, name: name, entry: entry, lastChange: now, isDicom: isDicom)
        return true
    }

    /// Whether a folder in an inbox is taken as DICOM: the inbox takes DICOM, the name is not
    /// hidden, partial or named like a NIfTI file, and it is not one of the inbox's own folders.
    func isDicomFolder(inbox: String, name: String) -> Bool {
        guard let config = inboxes[inbox]?.config, config.acceptsDicom else { return false }
        return !DropNames.isIgnored(name) && !NiftiReader.hasNiftiExtension(name) && !config.isOwnFolder(name)
    }

    /// A DICOM folder is complete when its snapshot has not changed for `dicom_settle_seconds`
    /// (it is walked every tenth of that, at most every 5 s, counted from the end of the last
    /// walk), or at once when it holds the marker file. An empty folder waits. The walk runs off
    /// the loop (`walkQueue`, one at a time; a study of 100k files or a slow network folder
    /// takes seconds) and its snapshot comes back to `folderWalked`. (Deliberately alike the
    /// file check in `tick()`: a snapshot instead of an lstat entry.)
    func settleFolder(_ key: String, now: Double) {
        guard var c = candidates[key], c.walk == nil else { return }
        let settle = config.dicom.settleSeconds
        if c.folder != nil && now - c.lastWalk < min(5, max(0.1, settle / 10)) { return }
        nextWalk += 1
        let walk = nextWalk
        c.walk = walk
        candidates[key] = c
        walkQueue.async { [self] in
            let started = monotonicSeconds()
            loop.async { self.assumeIsolated { $0.walkStartedAt = started } }
            let snapshot = FolderSnapshot(path: key)
            loop.async { self.assumeIsolated { $0.folderWalked(key, walk: walk, snapshot: snapshot, startedAt: started) } }
        }
    }

    /// A folder walk's answer, on the loop: the folder is taken when the snapshot is the one of
    /// `dicom_settle_seconds` before the walk began (or it holds the marker). A change counts
    /// from the walk's end, quiet time up to its start: a walk that takes long never shortens
    /// the wait.
    func folderWalked(_ key: String, walk: Int, snapshot: FolderSnapshot?, startedAt: Double) {
        walkStartedAt = nil
        guard var c = candidates[key], c.walk == walk else { return }
        let now = monotonicSeconds()
        c.walk = nil
        c.lastWalk = now
        guard let snapshot else {
            candidates[key] = nil
            return
        }
        if snapshot != c.folder {
            c.folder = snapshot
            c.lastChange = now
        }
        candidates[key] = c
        guard c.state == .settling, snapshot.files > 0 else { return }
        if snapshot.hasMarker || startedAt - c.lastChange >= config.dicom.settleSeconds {
            enqueue(key, now: now)
            startJobs()
            publishStatus()
        }
    }

    func rescanAll(reason: String) {
        for path in inboxes.keys.sorted() {
            let found = rescan(path)
            if found > 0, let state = inboxes[path], !state.polling {
                log.log(.rescan, "\(reason) listing of inbox \(state.config.name) found \(found) file\(found == 1 ? "" : "s") that inotify had not reported",
                        [("INBOX", state.config.name), ("FOUND", "\(found)"), ("TRIGGER", reason)])
            }
        }
        startJobs()
        publishStatus()
    }

    /// Lists an inbox: the listing is the truth, inotify only a hint. Returns the number of
    /// names it found that were not followed yet.
    @discardableResult
    func rescan(_ path: String) -> Int {
        guard var state = inboxes[path], !draining else { return 0 }
        if state.watch == nil && !state.polling { setWatch(path); state = inboxes[path]! }
        guard let names = DurableFile.list(path) else {
            let problem = "cannot list the folder: \(String(cString: strerror(errno)))"
            if state.problem != problem {
                log.log(.folderProblem, "inbox \(state.config.name): \(problem)", [("INBOX", state.config.name)])
                inboxes[path]?.problem = problem
            }
            return 0
        }
        if state.problem != nil { inboxes[path]?.problem = nil }
        let present = Set(names)
        for (key, c) in candidates where c.inbox == path && c.state != .running && !present.contains(c.name) {
            candidates[key] = nil
        }
        if candidates.count < Self.maxTracked { trackingFull = false }
        var found = 0
        for name in names.sorted() where note(inbox: path, name: name) { found += 1 }
        return found
    }

    func tick() {
        let now = monotonicSeconds()
        lastTick = now
        let settle = config.settleSeconds
        for (key, var c) in candidates where c.state == .settling {
            if c.isDicom {
                settleFolder(key, now: now)
                continue
            }
            guard let entry = DropEntry(path: key) else {
                candidates[key] = nil
                continue
            }
            if entry != c.entry {
                c.entry = entry
                c.lastChange = now
                c.parse = .unchecked
                candidates[key] = c
                continue
            }
            let stable = now - c.lastChange
            guard stable >= settle else { continue }
            if entry.kind != .regular || DropNames.scanExtension(of: c.name) == nil {
                enqueue(key, now: now)  // not a scan: taken to failed with the reason
                continue
            }
            switch c.parse {
            case .unchecked:
                c.parse = .checking
                candidates[key] = c
                checkParses(key: key, entry: entry, maxVoxels: inboxes[c.inbox]?.config.defacing.maxVoxels ?? NiftiReader.defaultMaxVoxels)
            case .checking:
                break
            case .ok:
                enqueue(key, now: now)
            case .failed(_, let incomplete):
                // a file that still does not parse after another settle period is taken (and fails with the reason)
                if !incomplete || stable >= 2 * settle { enqueue(key, now: now) }
            }
        }
        startJobs()
        publishStatus()
    }

    /// Reads the whole file once (off the loop, one at a time): a file that is still being
    /// written, or cut off, does not parse to its end.
    func checkParses(key: String, entry: DropEntry, maxVoxels: Int64) {
        parseQueue.async { [self] in
            loop.sync { self.assumeIsolated { $0.parseStartedAt = monotonicSeconds() } }
            var problem: NiftiError?
            do { _ = try NiftiReader(maxVoxels: maxVoxels).check(key) } catch let e as NiftiError { problem = e } catch {}
            let after = DropEntry(path: key)
            let parseProblem = problem
            loop.async { self.assumeIsolated { $0.parseChecked(key: key, entry: entry, after: after, problem: parseProblem) } }
        }
    }

    /// The answer of `checkParses`: settle again when the file changed meanwhile, else note
    /// whether it parsed (a file that parses is queued at once).
    func parseChecked(key: String, entry: DropEntry, after: DropEntry?, problem: NiftiError?) {
        parseStartedAt = nil
        guard var c = candidates[key], c.state == .settling, case .checking = c.parse else { return }
        let now = monotonicSeconds()
        if after != entry || c.entry != entry {
            c.parse = .unchecked
            c.lastChange = now
            if let after { c.entry = after }
            candidates[key] = c
            return
        }
        if let problem {
            var incomplete = false
            switch problem.code {
            case .truncated, .corruptCompression, .emptyFile, .notNifti, .permissionDenied: incomplete = true
            default: break
            }
            c.parse = .failed(at: now, incomplete: incomplete)
            candidates[key] = c
        } else {
            c.parse = .ok
            candidates[key] = c
            enqueue(key, now: now)
            startJobs()
            publishStatus()
        }
    }

    func enqueue(_ key: String, now: Double) {
        guard var c = candidates[key] else { return }
        c.state = .queued
        c.settledAt = now
        candidates[key] = c
        queue.append(QueueItem(inbox: c.inbox, kind: .fresh(name: c.name)))
    }
}
