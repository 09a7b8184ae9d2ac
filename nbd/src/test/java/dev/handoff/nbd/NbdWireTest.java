package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class NbdWireTest {

    @Test
    void requestRoundTripsWithUnsignedFields() throws Exception {
        Request r = new Request(CMD_FLAG_FUA, CMD_WRITE, -7L, -512L, 0xFFFF_FFFFL);
        ByteBuffer b = ByteBuffer.allocate(REQUEST_SIZE);
        r.encode(b);
        Request back = Request.decode(b.flip());
        assertThat(back).isEqualTo(r);
        assertThat(back.length()).isEqualTo(4_294_967_295L);
    }

    @Test
    void requestWithBadMagicIsAViolation() {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(0, CMD_READ, 1, 0, 512).encode(b);
        b.put(0, (byte) 0x26);
        assertThatThrownBy(() -> Request.decode(b.flip())).isInstanceOf(ProtocolViolation.class)
                .hasMessageContaining("bad request magic");
    }

    @Test
    void truncatedFramesAreViolations() {
        assertThatThrownBy(() -> Request.decode(ByteBuffer.allocate(27))).isInstanceOf(ProtocolViolation.class);
        assertThatThrownBy(() -> SimpleReply.decode(ByteBuffer.allocate(15))).isInstanceOf(ProtocolViolation.class);
        assertThatThrownBy(() -> OptionRequest.decode(ByteBuffer.allocate(15))).isInstanceOf(ProtocolViolation.class);
        assertThatThrownBy(() -> OptionReply.decode(ByteBuffer.allocate(19))).isInstanceOf(ProtocolViolation.class);
    }

    @Test
    void insideUsesUnsignedArithmeticWithoutOverflow() {
        long size = 1 << 20;
        assertThat(new Request(0, CMD_READ, 1, 0, size).inside(size)).isTrue();
        assertThat(new Request(0, CMD_READ, 1, size, 0).inside(size)).isTrue();
        assertThat(new Request(0, CMD_READ, 1, size - 1, 2).inside(size)).isFalse();
        assertThat(new Request(0, CMD_READ, 1, Long.MAX_VALUE, 0xFFFF_FFFFL).inside(size)).isFalse();
        assertThat(new Request(0, CMD_READ, 1, -512L, 1024).inside(size)).as("offset near 2^64 wraps").isFalse();
    }

    @Test
    void structuredReplyMagicIsRefusedWhenNotNegotiated() {
        ByteBuffer b = ByteBuffer.allocate(SIMPLE_REPLY_SIZE).putInt(STRUCTURED_REPLY_MAGIC).putInt(0).putLong(1);
        assertThatThrownBy(() -> SimpleReply.decode(b.flip())).hasMessageContaining("structured");
    }

    @Test
    void infoRequestRoundTripsAndRejectsInconsistentLengths() throws Exception {
        InfoRequest r = new InfoRequest("disk \u00e9", new int[] {INFO_BLOCK_SIZE, INFO_NAME});
        ByteBuffer b = ByteBuffer.allocate(r.encodedSize());
        r.encode(b);
        InfoRequest back = InfoRequest.decode(b.flip());
        assertThat(back.name()).isEqualTo("disk \u00e9");
        assertThat(back.infos()).containsExactly(INFO_BLOCK_SIZE, INFO_NAME);

        ByteBuffer nameTooLong = ByteBuffer.allocate(8).putInt(100).putShort((short) 0).putShort((short) 0);
        assertThatThrownBy(() -> InfoRequest.decode(nameTooLong.flip())).isInstanceOf(ProtocolViolation.class);
        ByteBuffer countMismatch = ByteBuffer.allocate(8).putInt(0).putShort((short) 3).putShort((short) 0);
        assertThatThrownBy(() -> InfoRequest.decode(countMismatch.flip())).isInstanceOf(ProtocolViolation.class);
        ByteBuffer hugeName = ByteBuffer.allocate(10).putInt(-1).putShort((short) 0).putInt(0);
        assertThatThrownBy(() -> InfoRequest.decode(hugeName.flip())).isInstanceOf(ProtocolViolation.class);
    }

    @Test
    void stringsMustBeUtf8WithoutNulAndAtMost4096Bytes() {
        assertThatThrownBy(() -> decodeString(ByteBuffer.wrap(new byte[] {(byte) 0xC3, 0x28}), 2, "name"))
                .hasMessageContaining("UTF-8");
        assertThatThrownBy(() -> decodeString(ByteBuffer.wrap(new byte[] {'a', 0, 'b'}), 3, "name"))
                .hasMessageContaining("NUL");
        assertThatThrownBy(() -> decodeString(ByteBuffer.allocate(5000), 5000, "name"))
                .hasMessageContaining("longer than 4096");
    }
}
