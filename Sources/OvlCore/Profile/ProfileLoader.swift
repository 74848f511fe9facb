import Foundation

/// Reads a profile of any supported format, recognised by its content (not its name),
/// from a file, a named pipe or standard input (`-`), and resolves it against a program.
public enum ProfileLoader {
    public static func load(path: String, program: Program, chains: Chains, showProgress: Bool = Progress.stderrIsTerminal) throws -> Profile {
        let stream = try ByteStream(path: path)
        let head = try stream.peek(64)
        guard !head.isEmpty else { throw OvlError.file(path, "is empty, not a profile") }
        if head.starts(with: TraceFile.magic) {
            let reading = TraceReading(stream, elf: program.elf, showProgress: showProgress)
            return try load(reading, program: program, chains: chains)
        }
        let progress = Progress("reading \(path == "-" ? "standard input" : path)", total: stream.totalSize, enabled: showProgress)
        defer { progress.finish() }
        let profile: Profile
        if looksLikeQEMULog(head) {
            profile = Profile(source: path, format: .qemuLog, hasSequence: true, blockCount: program.blockCount)
            // The reader turns the log into batches of addresses.
            try resolveInTwoStages(profile, program: program, chains: chains, progress: progress) { sink in
                try QEMULogParser.read(stream, until: { sink.isClosed }) { sink.put($0, bytesRead: $1) }
            }
        } else if let text = String(validatingUTF8CString: head), FData.looksLikeFData(text) {
            profile = Profile(source: path, format: .fdata, hasSequence: false, blockCount: program.blockCount)
            try FData.parse(stream, path: path, into: profile, program: program, chains: chains)
        } else {
            throw OvlError.file(path, "is not a profile ovl reads (an ovl trace, a QEMU -d exec log, or a BOLT .fdata file)")
        }
        try validate(profile, path: path, program: program)
        return profile
    }

    /// Starts reading an ovl trace before the program it belongs to is decoded: a thread
    /// decodes the addresses, runs outside the image collapsed, into batches that wait
    /// (up to `TraceReading.earlyBudget` bytes) for `load(_:program:chains:)`. On a
    /// kernel the boot trace opens with the decompressor's tens of millions of addresses
    /// outside the image, which the reader gets through while this thread decodes the
    /// image. Nil when `path` is standard input or not an ovl trace (load it as usual).
    public static func startReading(path: String, elf: ELFFile, showProgress: Bool = Progress.stderrIsTerminal,
                                    earlyBudget: Int = TraceReading.earlyBudget) throws -> TraceReading? {
        guard path != "-" else { return nil }
        let stream = try ByteStream(path: path)
        guard try stream.peek(TraceFile.magic.count) == TraceFile.magic else { return nil }
        return TraceReading(stream, elf: elf, showProgress: showProgress, earlyBudget: earlyBudget)
    }

    /// Finishes reading a trace started by `startReading(path:elf:showProgress:)`, or by
    /// `load(path:program:chains:showProgress:)`, against the decoded program.
    /// `pausePerBatch` (seconds, tests only) makes the resolver slow, so that the queue
    /// fills and the reader helps with what was left to the resolver.
    public static func load(_ reading: TraceReading, program: Program, chains: Chains, pausePerBatch: Double = 0) throws -> Profile {
        let path = reading.path
        let profile = Profile(source: path, format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        defer { reading.progress.finish() }
        try resolve(reading.queue, sink: reading.sink, profile, program: program, chains: chains, progress: reading.progress,
                    pausePerBatch: pausePerBatch)
        try validate(profile, path: path, program: program)
        return profile
    }

    static func looksLikeQEMULog(_ head: [UInt8]) -> Bool {
        let s = String(decoding: head, as: UTF8.self)
        return s.hasPrefix("Trace ") || s.contains("\nTrace ")
    }

    /// Rejects a profile whose addresses mostly do not belong to the image.
    static func validate(_ p: Profile, path: String, program: Program) throws {
        let s = p.stats
        let inImage = s.matched + s.misaligned
        let total = s.addresses - s.repIterations
        if total == 0 { throw OvlError.file(path, "holds no addresses") }
        if inImage == 0 && s.excludedSection == 0 {
            throw OvlError.file(path, "does not belong to \(program.path): none of its \(total) addresses fall in the image's code")
        }
        if s.misaligned * 10 > inImage {
            throw OvlError.file(path, "does not belong to \(program.path): only \(s.matched) of \(inImage) addresses inside its code are instruction starts (a profile of another binary or build?)")
        }
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}

extension String {
    /// The bytes as text when they are valid UTF-8 (a cut multi-byte character at the end
    /// is dropped).
    init?(validatingUTF8CString bytes: [UInt8]) {
        var b = bytes
        while let last = b.last, last & 0xC0 == 0x80 || last >= 0xC0 { b.removeLast(); if b.isEmpty { break } }
        guard let s = String(validating: b, as: UTF8.self) else { return nil }
        self = s
    }
}

extension ProfileLoader {
    /// Two stages on two cores: `read`, on a thread of its own, reads the addresses and
    /// hands them to an `AddressSink`, which classifies them there (`AddressClassifier`)
    /// and queues the results; `read` returns the count of lines that were not addresses.
    /// This thread keeps the state: blocks entered, chain runs, transfers.
    static func resolveInTwoStages(_ profile: Profile, program: Program, chains: Chains, progress: Progress,
                                   read: @escaping @Sendable (AddressSink) throws -> UInt64) throws {
        let queue = BatchQueue<ClassifiedBatch>(capacity: 4)
        let sink = AddressSink(AddressClassifier(program: program), queue)
        queue.start { _ in
            let lines = try read(sink)
            sink.finishBacklog()
            return lines
        }
        try resolve(queue, sink: sink, profile, program: program, chains: chains, progress: progress)
    }

    /// The resolving stage: offers the reader a classifier (a reader started before the
    /// program was decoded has none), then takes the batches in order.
    static func resolve(_ queue: BatchQueue<ClassifiedBatch>, sink: AddressSink, _ profile: Profile, program: Program, chains: Chains,
                        progress: Progress, pausePerBatch: Double = 0) throws {
        var builder = BlockSequenceBuilder(program: program, chains: chains, profile: profile)
        let classifier = AddressClassifier(program: program)
        sink.offer(classifier)
        // This thread classifies the tail of a batch that the reader left it (see
        // `AddressSink`), with a classifier of its own.
        var tailClassifier = classifier
        var tail: [Int32] = []
        let otherLines = try queue.drain { batch in
            if pausePerBatch > 0 { Thread.sleep(forTimeInterval: pausePerBatch) }
            if batch.sizeHint > 0 { builder.reserve(forAddresses: batch.sizeHint) }
            batch.values.withUnsafeBufferPointer { builder.addClassified($0, counts: batch.counts) }
            if !batch.rest.isEmpty {
                tailClassifier.lastPC = batch.restPrevious
                let counts = batch.rest.withUnsafeBufferPointer { tailClassifier.classify($0, collapsedRuns: batch.collapsedRuns, repeatRuns: batch.repeatRuns, loopRoom: batch.loopRoom, into: &tail) }
                tail.withUnsafeBufferPointer { builder.addClassified($0, counts: counts) }
            }
            progress.update(batch.bytesRead)
        }
        builder.finish()
        profile.stats.otherLines = otherLines
    }
}

/// An ovl trace being read on a thread of its own (`ProfileLoader.startReading`): the
/// addresses wait, decoded and with runs outside the image collapsed, for the program.
public final class TraceReading: @unchecked Sendable {
    /// What a reader started early may hold before the program is decoded: 4 MB of
    /// addresses. The decompressor's stretch of a boot trace collapses to almost nothing,
    /// and getting through it is what reading early is for; every address held beyond that
    /// is eight bytes of fresh memory, and with 64 MB a program's whole trace waited so,
    /// a third of the process's page faults, to be read from the queue once.
    public static let earlyBudget = 4 << 20
    let path: String
    let queue: BatchQueue<ClassifiedBatch>
    let sink: AddressSink
    let progress: Progress

    init(_ stream: ByteStream, elf: ELFFile, showProgress: Bool, earlyBudget: Int = TraceReading.earlyBudget) {
        path = stream.path
        queue = BatchQueue(capacity: 4, earlyBudget: earlyBudget)
        sink = AddressSink(nil, queue)
        progress = Progress("reading \(path)", total: stream.totalSize, enabled: showProgress)
        let sink = self.sink, path = self.path, window = AddressClassifier.foreignWindow(of: elf)
        queue.start { _ in
            let hash = TraceFile.codeHash(of: elf)
            try TraceFile.readBatches(stream, header: { h in
                guard h.codeHash == hash else {
                    throw OvlError.file(path, "is a trace of \(h.imageName.isEmpty ? "another image" : "'\(h.imageName)'") whose code differs from \(elf.path) (code hash \(ProfileLoader.hex(h.codeHash)) vs \(ProfileLoader.hex(hash))); record it again against this build")
                }
                // Every address takes at least a byte: a damaged count cannot ask for
                // more room than the file could fill.
                sink.expected = min(h.count, stream.totalSize ?? h.count)
            }, collapsingOutside: window, foldingLoops: { sink.resolverIsBehind }, sink: { batch, counts in
                if sink.isClosed { throw OvlError("reading stopped") }
                sink.put(batch, collapsed: counts.collapsed, repeated: counts.repeated, inLoops: counts.inLoops, bytesRead: stream.bytesRead)
            })
            sink.finishBacklog()
            return 0
        }
    }

    /// Stops the reader when the trace will not be resolved (the image failed to load).
    public func cancel() {
        queue.close()
        progress.finish()
    }
}

/// The reader thread's end of the hand-over: classifies each batch of addresses and queues
/// the result. Used by that thread only, except `offer(_:)`.
final class AddressSink: @unchecked Sendable {
    /// Nil until the program is decoded and the resolver offers one: until then every
    /// batch goes to the resolver unclassified.
    private var classifier: AddressClassifier?
    private let offerLock = NSCondition()
    private var offered: AddressClassifier?
    private let queue: BatchQueue<ClassifiedBatch>
    /// The last address put (a rep-string iteration repeats it).
    private var lastPC: UInt64 = .max

    /// `classifier` nil: a reader started before the program was decoded.
    init(_ classifier: AddressClassifier?, _ queue: BatchQueue<ClassifiedBatch>) {
        self.classifier = classifier
        self.queue = queue
    }

    /// Hands this thread a classifier for the batches still to come.
    func offer(_ c: AddressClassifier) {
        offerLock.lock()
        offered = c
        offerLock.broadcast()
        offerLock.unlock()
    }

    /// Classifies, from the last back, the batches queued before this thread had a
    /// classifier, while the resolver takes them from the first: a reader started early
    /// can hold a whole small trace unclassified when the program is ready.
    private func classifyBacklog() {
        guard backlog, classifier != nil else { return }
        while classifyLastEarlyBatch() {}
        backlog = false
    }

    /// Classifies the last batch queued before this thread had a classifier that nobody
    /// works on; false when there is none.
    private func classifyLastEarlyBatch() -> Bool {
        classifyLastRest { $0.early }
    }

    /// Classifies the part left for the resolver (`rest`) of the last queued batch that
    /// `wanted` picks and nobody works on; false when there is none.
    private func classifyLastRest(_ wanted: (ClassifiedBatch) -> Bool) -> Bool {
        guard let (sequence, batch) = queue.claimLast(where: { !$0.rest.isEmpty && wanted($0) }) else { return false }
        var b = batch
        classifier!.lastPC = b.restPrevious
        let counts: ProfileStats
        if b.values.isEmpty {
            counts = b.rest.withUnsafeBufferPointer { classifier!.classify($0, collapsedRuns: b.collapsedRuns, repeatRuns: b.repeatRuns, loopRoom: b.loopRoom, into: &b.values) }
        } else {
            var tail: [Int32] = []
            counts = b.rest.withUnsafeBufferPointer { classifier!.classify($0, collapsedRuns: b.collapsedRuns, repeatRuns: b.repeatRuns, loopRoom: b.loopRoom, into: &tail) }
            b.values += tail
        }
        b.counts.addClassified(counts)
        b.rest = []
        b.early = false
        queue.giveBack(sequence, b)
        return true
    }

    /// While a batch waits for room in the queue: classifies one batch of the backlog
    /// (taking the classifier if the resolver has offered it since). A reader started
    /// early holds up to `TraceReading.earlyBudget` of batches when the resolver starts,
    /// and from then on may queue only `capacity`: without this it would sleep while the
    /// resolver classified the whole backlog on its own.
    ///
    /// With no backlog left, the same for the batches queued since: their share left to
    /// the resolver (`share`) follows the queue only a 64th a batch, and while the queue is
    /// full the resolver is behind, so this thread takes the rest of the newest batch (the
    /// resolver takes the oldest).
    private func helpWhileWaiting() -> Bool {
        if classifier == nil {
            offerLock.lock()
            classifier = offered
            offerLock.unlock()
        }
        guard classifier != nil else { return false }
        if backlog && classifyLastEarlyBatch() { return true }
        return classifyLastRest { _ in true }
    }
    /// Whether batches were queued without a classifier.
    private var backlog = false

    /// After the last batch: waits for the classifier (unless the resolver has gone) and
    /// helps with the batches queued before it came, then with the share of the batches
    /// still queued that was left to the resolver, from the newest back.
    func finishBacklog() {
        if backlog {
            offerLock.lock()
            while offered == nil && !queue.isClosed { _ = offerLock.wait(until: Date(timeIntervalSinceNow: 0.05)) }
            if classifier == nil { classifier = offered }
            offerLock.unlock()
            classifyBacklog()
        }
        guard classifier != nil else { return }
        while classifyLastRest({ _ in true }) {}
    }

    /// Where to split a batch with `TraceFile.repeatRun`s at or after `split`: not before
    /// a mark's pattern, so that the part left to the resolver holds the pattern of each
    /// of its marks.
    static func split(_ pcs: UnsafeBufferPointer<UInt64>, near split: Int) -> Int {
        var s = split
        var j = s
        while j < min(s + 4, pcs.count) {
            if TraceFile.isRepeatRun(pcs[j]) { s = j + 1 }
            j += 1
        }
        return s
    }

    /// Whether the resolver had not taken every batch when this thread put the last one:
    /// folding loops (`DeltaDecoder.foldLoops`) saves the resolver work and costs this
    /// thread some, so it is worth it only then (on a glibc program's trace the resolver
    /// sets the pace; on a kernel's boot this thread does).
    private(set) var resolverIsBehind = true

    /// Whether the resolver has stopped (reading can stop too).
    var isClosed: Bool { queue.isClosed }
    /// How many addresses the input says it holds (a trace's header), for the first
    /// batch to carry to the resolver; 0 when unknown.
    var expected: UInt64 = 0

    /// The share of each batch this thread classifies, in 64ths; the resolver classifies
    /// the rest. Reading, classifying and resolving cost different amounts on different
    /// inputs and machines, so the share follows the queue: when it is empty as this
    /// thread puts a batch, the resolver keeps up and this thread gives up a 64th; when
    /// it is full, this thread takes one.
    private var share = 48

    /// Classifies this thread's share of a batch and queues it with the rest. `collapsed`
    /// addresses outside the image were left out of `pcs`, each run of them standing as
    /// one `TraceFile.collapsedRun` (the trace reader); a QEMU log's reader passes 0 and
    /// no runs. `repeated` addresses stand in `TraceFile.repeatRun`s after the address
    /// they repeat.
    func put(_ pcs: UnsafeBufferPointer<UInt64>, collapsed: UInt64 = 0, repeated: UInt64 = 0, inLoops: UInt64 = 0, bytesRead: UInt64) {
        if classifier == nil {
            offerLock.lock()
            classifier = offered
            offerLock.unlock()
        }
        classifyBacklog()
        var values: [Int32] = []
        var counts = ProfileStats()
        let runs = collapsed > 0, repeats = repeated > 0
        let previous = lastPC
        var split = 0
        if classifier != nil {
            split = pcs.count * share / 64
            if repeats { split = AddressSink.split(pcs, near: split) }
            classifier!.lastPC = previous
            counts = classifier!.classify(UnsafeBufferPointer(rebasing: pcs[..<split]), collapsedRuns: runs, repeatRuns: repeats, loopRoom: Int(inLoops), into: &values)
        }
        counts.addresses += collapsed
        counts.foreign += collapsed
        lastPC = TraceFile.address(before: pcs.count, in: pcs, repeats: repeats, else: previous)
        if classifier == nil { backlog = true }
        let state = queue.put(ClassifiedBatch(values: values, counts: counts, bytesRead: bytesRead, sizeHint: expected,
                                              rest: Array(UnsafeBufferPointer(rebasing: pcs[split...])),
                                              restPrevious: TraceFile.address(before: split, in: pcs, repeats: repeats, else: previous),
                                              collapsedRuns: runs, repeatRuns: repeats, loopRoom: Int(inLoops),
                                              early: classifier == nil),
                              weight: (pcs.count - split) * 8, whileWaiting: helpWhileWaiting)
        switch state {
        case .wasEmpty: share = max(0, share - 1)
        case .wasFull: share = min(64, share + 1)
        case .between: break
        }
        resolverIsBehind = state != .wasEmpty
        expected = 0
    }
}

/// Addresses classified on the reader thread, with what the classifier counted for them
/// and how far into the input the reader was.
struct ClassifiedBatch {
    var values: [Int32]
    /// What the classifier counted for `values` (`AddressClassifier.classify(_:into:)`).
    var counts: ProfileStats
    var bytesRead: UInt64
    /// The addresses the whole input holds, on the first batch when the input says.
    var sizeHint: UInt64 = 0
    /// The batch's last addresses, left for the resolver to classify, and the address
    /// before them.
    var rest: [UInt64] = []
    var restPrevious: UInt64 = .max
    /// Whether `TraceFile.collapsedRun` in `rest` stands for a run already counted.
    var collapsedRuns = false
    /// Whether `rest` may hold `TraceFile.repeatRun`s, and how many addresses those of
    /// loops stand for.
    var repeatRuns = false
    var loopRoom = 0
    /// Queued before the reader had a classifier: all of it in `rest`.
    var early = false
}

/// A bounded hand-over of batches from the reader thread to the resolver.
final class BatchQueue<Item>: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Item] = []
    private let capacity: Int
    private var done = false
    private var closed = false
    private(set) var error: Error?
    private(set) var otherLines: UInt64 = 0

    /// Until the consumer first takes an item, the producer may run ahead by this much
    /// weight (items of `put(_:weight:)`) instead of `capacity` items.
    private let earlyBudget: Int
    private var started = false
    private var pendingWeight = 0
    private var weights: [Int] = []
    /// Items the producer has taken back to work on (`claimLast`), by sequence number
    /// (`firstSequence` is the first item's); the consumer waits for them.
    private var claimed = Set<Int>()
    private var firstSequence = 0

    init(capacity: Int, earlyBudget: Int = 0) {
        self.capacity = capacity
        self.earlyBudget = earlyBudget
    }

    var isClosed: Bool { cond.lock(); defer { cond.unlock() }; return closed }

    /// How the queue stood when an item was put: empty (the consumer had taken all
    /// there was), full (the producer had to wait), or neither.
    enum Standing { case wasEmpty, wasFull, between }

    /// Blocks while the queue is full (unless the consumer has gone): `capacity` items,
    /// and before the consumer has started, `earlyBudget` of weight beyond them. A backlog
    /// left from that start counts as neither empty nor full. While it would block, the
    /// producer's `whileWaiting` runs first, again for as long as it finds work (returns
    /// true) and the queue stays full.
    @discardableResult
    func put(_ batch: Item, weight: Int = 0, whileWaiting: (() -> Bool)? = nil) -> Standing {
        cond.lock()
        let standing: Standing = !started ? .between : items.isEmpty ? .wasEmpty
            : items.count == capacity ? .wasFull : .between
        func full() -> Bool { !closed && items.count >= capacity && (started || pendingWeight + weight > earlyBudget) }
        var helping = whileWaiting != nil
        while full() {
            if helping, let help = whileWaiting {
                cond.unlock()
                helping = help()
                cond.lock()
                continue  // the queue may have room now: look again
            }
            cond.wait()
            helping = whileWaiting != nil  // woken: there may be work now (a classifier offered)
        }
        if !closed {
            items.append(batch)
            weights.append(weight)
            pendingWeight += weight
        }
        cond.broadcast()
        cond.unlock()
        return standing
    }

    func finish(otherLines: UInt64, error: Error?) {
        cond.lock()
        done = true
        self.otherLines = otherLines
        self.error = error
        cond.broadcast()
        cond.unlock()
    }

    /// The next batch, or nil once the reader has finished and everything was taken.
    func take() -> Item? {
        cond.lock()
        defer { cond.unlock() }
        while items.isEmpty ? !done : claimed.contains(firstSequence) { cond.wait() }
        started = true
        guard !items.isEmpty else { return nil }
        let first = items.removeFirst()
        pendingWeight -= weights.removeFirst()
        firstSequence += 1
        cond.broadcast()
        return first
    }

    /// The last queued item that `wanted` picks and nobody works on, with its sequence
    /// number, taken back for the producer to work on; the consumer waits for it to be
    /// returned (`giveBack`). Nil when there is none.
    func claimLast(where wanted: (Item) -> Bool) -> (Int, Item)? {
        cond.lock()
        defer { cond.unlock() }
        guard !closed else { return nil }
        for i in items.indices.reversed() where !claimed.contains(firstSequence + i) && wanted(items[i]) {
            claimed.insert(firstSequence + i)
            return (firstSequence + i, items[i])
        }
        return nil
    }

    /// Returns an item taken back by `claimLast`, changed.
    func giveBack(_ sequence: Int, _ item: Item) {
        cond.lock()
        let i = sequence - firstSequence
        if !closed && i >= 0 && i < items.count { items[i] = item }
        claimed.remove(sequence)
        cond.broadcast()
        cond.unlock()
    }

    /// Two stages on two cores: `produce` runs on a thread of its own, putting items into
    /// a queue (and returning a count of lines that were not addresses, reported at the
    /// end), while this thread hands each item to `consume`, in order. An error on either
    /// side, or Ctrl-C, stops both and is thrown here.
    static func pipeline(produce: @escaping @Sendable (BatchQueue) throws -> UInt64, consume: (Item) throws -> Void) throws -> UInt64 {
        let queue = BatchQueue(capacity: 4)
        queue.start(produce)
        return try queue.drain(consume)
    }

    /// Runs `produce` on a thread of its own, putting items into this queue.
    func start(_ produce: @escaping @Sendable (BatchQueue) throws -> UInt64) {
        let producer = Thread { [self] in
            do {
                finish(otherLines: try produce(self), error: nil)
            } catch {
                finish(otherLines: 0, error: error)
            }
        }
        producer.stackSize = 1 << 20
        producer.start()
    }

    /// Hands each item to `consume`, in order, until the producer has finished; returns
    /// its count. An error on either side, or Ctrl-C, stops both and is thrown here.
    func drain(_ consume: (Item) throws -> Void) throws -> UInt64 {
        defer { close() }
        while let item = take() {
            try consume(item)
            try Interrupt.check()
        }
        if let e = error { throw e }
        return otherLines
    }

    /// The consumer stops (finished, failed or interrupted): release the reader.
    func close() {
        cond.lock()
        closed = true
        items.removeAll()
        weights.removeAll()
        pendingWeight = 0
        cond.broadcast()
        cond.unlock()
    }
}

extension QEMULogParser {
    /// Reads a QEMU exec log from `stream` on a thread of its own and hands its addresses,
    /// in order and in batches, to `sink` on this thread (`ovl convert`: parsing and
    /// encoding on two cores). Returns how many lines were not trace lines.
    public static func parseInTwoStages(_ stream: ByteStream, progress: Progress? = nil,
                                        sink: (UnsafeBufferPointer<UInt64>) throws -> Void) throws -> UInt64 {
        try BatchQueue<([UInt64], UInt64)>.pipeline(produce: { queue in
            try QEMULogParser.read(stream, until: { queue.isClosed }) { queue.put((Array($0), $1)) }
        }, consume: { pcs, bytes in
            try pcs.withUnsafeBufferPointer { try sink($0) }
            progress?.update(bytes)
        })
    }

    /// Reads a QEMU exec log from `stream` to its end (or until `stop()`), handing the
    /// addresses of each chunk to `sink` with how far the stream has been read. Returns
    /// how many lines were not trace lines.
    static func read(_ stream: ByteStream, until stop: () -> Bool,
                     sink: (UnsafeBufferPointer<UInt64>, UInt64) throws -> Void) throws -> UInt64 {
        var parser = QEMULogParser()
        var buf = [UInt8](repeating: 0, count: 2 << 20)
        var pcs: [UInt64] = []
        while !stop() {
            let n = try stream.read(into: &buf, at: 0, count: buf.count)
            if n == 0 { break }
            pcs.removeAll(keepingCapacity: true)
            buf.withUnsafeBytes { raw in parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n]), into: &pcs) }
            try pcs.withUnsafeBufferPointer { try sink($0, stream.bytesRead) }
        }
        pcs.removeAll(keepingCapacity: true)
        parser.finish { pcs.append($0) }
        try pcs.withUnsafeBufferPointer { try sink($0, stream.bytesRead) }
        return parser.otherLines
    }
}
