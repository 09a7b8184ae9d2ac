package dev.handoff.coordination;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;

/** Reads who wrote which block of a test image ({@link HolderMain}'s block layout). */
final class Blocks {
    /** One block's header: who wrote it, with which epoch, as which write. */
    record Block(String owner, long epoch, int seq) {
    }

    private Blocks() {
    }

    /** Every written block of {@code image}, by block number. */
    static Map<Integer, Block> read(Path image) throws IOException {
        Map<Integer, Block> blocks = new TreeMap<>();
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            long n = ch.size() / HolderMain.BLOCK;
            for (int i = 0; i < n; i++) {
                ByteBuffer b = ByteBuffer.allocate(128);
                ch.read(b, (long) i * HolderMain.BLOCK);
                String head = new String(b.array(), StandardCharsets.US_ASCII);
                int nl = head.indexOf('\n');
                if (!head.startsWith("owner=") || nl < 0) {
                    continue;
                }
                Map<String, String> f = new TreeMap<>();
                for (String kv : head.substring(0, nl).split(" ")) {
                    int eq = kv.indexOf('=');
                    f.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
                blocks.put(i, new Block(f.get("owner"), Long.parseLong(f.get("epoch")), Integer.parseInt(f.get("seq"))));
            }
        }
        return blocks;
    }
}
