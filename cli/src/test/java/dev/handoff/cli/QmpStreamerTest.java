package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** QMP input split into messages as QEMU's streamer splits it, recovering after a syntax error. */
class QmpStreamerTest {
    private final List<String> messages = new ArrayList<>();
    private final List<String> errors = new ArrayList<>();
    private final QmpStreamer streamer = new QmpStreamer(new QmpStreamer.Sink() {
        @Override
        public void message(String json) {
            messages.add(json.strip());
        }

        @Override
        public void error(String description) {
            errors.add(description);
        }
    });

    private void feed(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        streamer.feed(b, b.length);
    }

    @Test
    void messagesEndWhereTheirBracesCloseWithOrWithoutNewlines() {
        feed("{\"execute\":\"a\",\"arguments\":{\"x\":[1,{\"y\":\"}\"}]}}{\"execute\":\"b\"}\n  {\"execute\"");
        feed(":\"c\"}");
        assertThat(messages).containsExactly("{\"execute\":\"a\",\"arguments\":{\"x\":[1,{\"y\":\"}\"}]}}",
                "{\"execute\":\"b\"}", "{\"execute\":\"c\"}");
        assertThat(errors).isEmpty();
    }

    @Test
    void aScalarAtTheTopIsAMessageOfItsOwn() {
        feed("\"x\" 12 true [1,2]");
        assertThat(messages).containsExactly("\"x\"", "12", "true", "[1,2]");
    }

    @Test
    void aStrayCharacterIsOneErrorAndTheNextMessageStillArrives() {
        feed("{\"execute\": @@@ \"query-jobs\"} garbage}\n{\"execute\":\"query-jobs\"}");
        assertThat(errors).containsExactly("JSON parse error, stray '@'");
        // Recovery resumes at the next brace, as QEMU's lexer does: what follows is parsed (and refused) as is.
        assertThat(messages).containsExactly("}", "garbage", "}", "{\"execute\":\"query-jobs\"}");
    }

    @Test
    void aNewlineResynchronizesAfterAnError() {
        feed("{\"a\": #\nxyz\n{\"execute\":\"q\"}");
        assertThat(errors).containsExactly("JSON parse error, stray '#'");
        assertThat(messages).containsExactly("xyz", "{\"execute\":\"q\"}");
    }

    @Test
    void unbalancedClosingIsHandedToTheParser() {
        feed("{\"execute\": \n}\n]");
        assertThat(messages).containsExactly("{\"execute\": \n}", "]");
    }

    @Test
    void aMessageLargerThanTheLimitIsDroppedWithOneError() {
        StringBuilder big = new StringBuilder("{\"x\":\"");
        big.append("a".repeat(QmpStreamer.MAX_MESSAGE));
        big.append("\"}\n{\"execute\":\"q\"}");
        feed(big.toString());
        assertThat(errors).singleElement().asString().contains("too large");
        assertThat(messages).containsExactly("}", "{\"execute\":\"q\"}");
    }
}
