package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The reader's read-ahead: every byte once and in order, and what is already here is counted. */
@Timeout(30)
class ReadAheadTest {

    /** A channel over {@code data} that gives each read all it asks for and records how much that was. */
    private static final class Source implements ReadableByteChannel {
        final ByteBuffer in;
        final List<Integer> asked = new ArrayList<>();

        Source(byte[] data) {
            in = ByteBuffer.wrap(data);
        }

        @Override
        public int read(ByteBuffer dst) {
            asked.add(dst.remaining());
            if (!in.hasRemaining()) {
                return -1;
            }
            int n = Math.min(in.remaining(), dst.remaining());
            dst.put(in.slice().limit(n));
            in.position(in.position() + n);
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
        }
    }

    private static byte[] bytes(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + 7);
        }
        return b;
    }

    @Test
    void aHeaderAndItsPayloadComeFromOneReadAndTheNextHeaderIsCountedAsPending() throws Exception {
        byte[] data = bytes(28 + 4096 + 28);
        Source source = new Source(data);
        ReadAhead input = new ReadAhead(source);
        ByteBuffer header = ByteBuffer.allocate(28);
        assertThat(FrameIo.readFrame(input, header)).isTrue();
        ByteBuffer payload = ByteBuffer.allocate(4096);
        FrameIo.readFully(input, payload);
        assertThat(source.asked).as("one read of the source").hasSize(1);
        assertThat(input.pending()).as("the next header, already here").isEqualTo(28);
        ByteBuffer next = ByteBuffer.allocate(28);
        assertThat(FrameIo.readFrame(input, next)).isTrue();
        assertThat(input.pending()).isZero();
        ByteBuffer all = ByteBuffer.allocate(data.length).put(header.flip()).put(payload.flip()).put(next.flip());
        assertThat(all.array()).isEqualTo(data);
        assertThat(FrameIo.readFrame(input, ByteBuffer.allocate(28))).as("end of stream between frames").isFalse();
    }

    @Test
    void aLargePayloadTakesWhatIsHereThenGoesStraightToTheSource() throws Exception {
        int large = 3 * ReadAhead.CAPACITY + 100;
        byte[] data = bytes(28 + large);
        Source source = new Source(data);
        ReadAhead input = new ReadAhead(source);
        ByteBuffer header = ByteBuffer.allocate(28);
        FrameIo.readFrame(input, header);
        ByteBuffer payload = ByteBuffer.allocateDirect(large);
        FrameIo.readFully(input, payload);
        assertThat(source.asked.get(0)).isEqualTo(ReadAhead.CAPACITY);
        assertThat(source.asked.get(1)).as("the rest, into the payload itself").isEqualTo(large - (ReadAhead.CAPACITY - 28));
        byte[] got = new byte[28 + large];
        header.flip().get(got, 0, 28);
        payload.flip().get(got, 28, large);
        assertThat(got).isEqualTo(data);
        assertThat(input.pending()).isZero();
    }

    @Test
    void aTruncatedFrameIsAnErrorNotAShortRead() {
        ReadAhead input = new ReadAhead(new Source(bytes(20)));
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> FrameIo.readFrame(input, ByteBuffer.allocate(28)))
                .isInstanceOf(java.io.EOFException.class).hasMessageContaining("after 20 of 28 bytes");
    }
}
