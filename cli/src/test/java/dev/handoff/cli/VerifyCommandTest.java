package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.handoff.device.MemoryDevice;
import dev.handoff.nbd.NbdAddress;
import dev.handoff.nbd.NbdExport;
import dev.handoff.nbd.NbdServer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code handoff verify} in process: a user's device class from a jar compiled here, a raw image,
 * an NBD export, and bad arguments, each with its exit code and its one line.
 */
class VerifyCommandTest {
    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    private static Path jar;

    @BeforeAll
    static void buildTheUsersJar() throws Exception {
        jar = UserJar.acme(shared);
    }

    private static Captured verify(String... args) {
        String[] all = Stream.concat(Stream.of("verify"), Stream.of(args)).toArray(String[]::new);
        return Captured.run(() -> Main.run(all));
    }

    @Test
    void aUsersDeviceClassFromAJarPassesEveryCheckItCanRunAndTheOthersAreSkipped() {
        Captured r = verify("--device", "com.acme.AcmeDevice", "--classpath", jar.toString(), "--seeds", "1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.out()).contains("random-operations-match-a-byte-array").contains("checksummed-concurrent-writes")
                .containsPattern("flushed-writes-survive-a-power-loss +skipped +- +[0-9.]+ s +no power loss to simulate")
                .contains("0 failed, 2 skipped");
    }

    @Test
    void aDeviceThatAcknowledgesWritesEarlyFailsTheConcurrentCheckWithItsSeedAndReplayLine() throws Exception {
        Captured r = verify("--device", "com.acme.EarlyAckDevice", "--classpath", jar.toString(), "--check",
                "checksummed-concurrent-writes", "--json");
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
        JsonNode report = Json.MAPPER.readTree(r.out());
        assertThat(report.get("passed").asBoolean()).isFalse();
        JsonNode check = report.get("checks").get(0);
        assertThat(check.get("id").asText()).isEqualTo("checksummed-concurrent-writes");
        assertThat(check.get("verdict").asText()).isEqualTo("failed");
        long seed = check.get("failure").get("seed").asLong();
        assertThat(seed).isEqualTo(1);
        assertThat(check.get("failure").get("message").asText()).startsWith("read-your-writes").contains("a torn block");
        assertThat(check.get("failure").get("replay").asText()).isEqualTo("handoff verify --device com.acme.EarlyAckDevice"
                + " --classpath " + jar + " --check checksummed-concurrent-writes --seed 1");
    }

    @Test
    void aDeviceFactoryBringsItsPowerLossSoDurabilityIsChecked() {
        Captured r = verify("--device", "com.acme.AcmeFactory", "--classpath", jar.toString(), "--check",
                "flushed-writes-survive-a-power-loss", "--seeds", "1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.out()).containsPattern("flushed-writes-survive-a-power-loss +passed +1 ").contains("1 passed, 0 failed, 0 skipped");
    }

    @Test
    void anImageIsCheckedOnAScratchCopyBesideItAndLeftAsItWas() throws Exception {
        Path image = dir.resolve("disk.img");
        byte[] content = new byte[5 << 20];
        new Random(5).nextBytes(content);
        Files.write(image, content);
        Captured r = verify("--image", image.toString(), "--json", "--seeds", "1");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode report = Json.MAPPER.readTree(r.out());
        assertThat(report.get("on").asText()).contains("scratch copy");
        assertThat(report.get("checks")).hasSize(16);
        assertThat(Files.readAllBytes(image)).isEqualTo(content);
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.toList()).containsExactly(image);
        }
    }

    @Test
    void withDestructiveTheImageItselfIsWritten() throws Exception {
        Path image = dir.resolve("disk.img");
        byte[] content = new byte[4 << 20];
        new Random(6).nextBytes(content);
        Files.write(image, content);
        Captured r = verify("--image", image.toString(), "--destructive", "--check", "starts-all-zero,checksummed-concurrent-writes");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.out()).contains("the image itself").contains("2 passed, 0 failed");
        assertThat(Files.readAllBytes(image)).isNotEqualTo(content);
    }

    @Test
    void anNbdExportIsCheckedAndItsFirstBytesAreWrittenBack() throws Exception {
        MemoryDevice exported = new MemoryDevice(5 << 20);
        byte[] content = new byte[5 << 20];
        new Random(7).nextBytes(content);
        exported.write(0, ByteBuffer.wrap(content));
        try (NbdServer server = NbdServer.builder().listen(NbdAddress.tcp(0)).export(NbdExport.of("disk", exported)).start()) {
            Captured r = verify("--nbd", server.uri("disk").toString(), "--seeds", "1");
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.out()).contains("saved to").contains("0 failed, 2 skipped");
        }
        ByteBuffer after = ByteBuffer.allocate(5 << 20);
        exported.read(0, after);
        assertThat(after.array()).isEqualTo(content);
    }

    @Test
    void aBudgetThatRunsOutLeavesLaterChecksUnrunAndFailsTheRun() throws Exception {
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[4 << 20]);
        Captured r = verify("--image", image.toString(), "--budget", "1ms", "--check",
                "random-operations-match-a-byte-array,starts-all-zero");
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
        assertThat(r.out()).containsPattern("starts-all-zero +not run +- +- +the budget ran out");
    }

    @Test
    void junitXmlHasATestCasePerCheckAndAFailureWithTheSmallestSeedAndItsReplayCommand() throws Exception {
        Path xml = dir.resolve("verify.xml");
        Captured r = verify("--device", "com.acme.EarlyAckDevice", "--classpath", jar.toString(), "--check",
                "starts-all-zero,checksummed-concurrent-writes,flushed-writes-survive-a-power-loss", "--junit-xml", xml.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
        Element suite = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(xml.toFile()).getDocumentElement();
        assertThat(suite.getTagName()).isEqualTo("testsuite");
        assertThat(suite.getAttribute("tests")).isEqualTo("3");
        assertThat(suite.getAttribute("failures")).isEqualTo("1");
        assertThat(suite.getAttribute("skipped")).isEqualTo("1");
        NodeList cases = suite.getElementsByTagName("testcase");
        assertThat(cases.getLength()).isEqualTo(3);
        Element passed = (Element) cases.item(0);
        assertThat(passed.getAttribute("name")).isEqualTo("starts-all-zero");
        assertThat(passed.getAttribute("classname")).isEqualTo("handoff.verify.sequential");
        assertThat(passed.getChildNodes().getLength()).isZero();
        Element failed = (Element) cases.item(1);
        assertThat(failed.getAttribute("name")).isEqualTo("checksummed-concurrent-writes");
        Element failure = (Element) failed.getElementsByTagName("failure").item(0);
        assertThat(failure.getAttribute("message")).startsWith("seed 1: read-your-writes");
        assertThat(failure.getTextContent()).contains("a torn block").contains("replay: handoff verify --device"
                + " com.acme.EarlyAckDevice --classpath " + jar + " --check checksummed-concurrent-writes --seed 1");
        Element skipped = (Element) cases.item(2);
        assertThat(skipped.getElementsByTagName("skipped").item(0).getAttributes().getNamedItem("message").getNodeValue())
                .contains("no power loss to simulate");
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.toList()).as("no temporary file left").containsExactly(xml);
        }
    }

    @Test
    void aMarkdownOrHtmlReportHasTheVerdictTableAndEachFailuresSeedMessageAndReplay() throws Exception {
        Path md = dir.resolve("verify.md");
        Path html = dir.resolve("verify.html");
        String[] args = {"--device", "com.acme.EarlyAckDevice", "--classpath", jar.toString(), "--check",
            "starts-all-zero,checksummed-concurrent-writes"};
        Captured r = verify(Stream.concat(Stream.of(args), Stream.of("--report", md.toString(), "--json")).toArray(String[]::new));
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
        String replay = "handoff verify --device com.acme.EarlyAckDevice --classpath " + jar
                + " --check checksummed-concurrent-writes --seed 1";
        assertThat(Files.readString(md))
                .startsWith("# handoff verify: FAILED")
                .contains("1 passed, 1 failed, 0 skipped")
                .containsPattern("\\| concurrent contract \\| `checksummed-concurrent-writes` \\| \\*\\*FAILED\\*\\* \\| 1 \\|")
                .contains("| sequential contract | `starts-all-zero` | passed | 1 |")
                .contains("## `checksummed-concurrent-writes` failed", "Smallest failing seed: 1", "a torn block", replay);

        Captured h = verify(Stream.concat(Stream.of(args), Stream.of("--report", html.toString())).toArray(String[]::new));
        assertThat(h.exit()).as(h.toString()).isEqualTo(ExitCodes.FAILED);
        String page = Files.readString(html);
        assertThat(page).startsWith("<!DOCTYPE html>").contains("<td class=\"failed\">FAILED</td>")
                .contains("<h2 id=\"checksummed-concurrent-writes\">").contains(replay).endsWith("</html>\n");
        // well-formed enough for an XML parser: every tag closed, every value escaped
        DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(new java.io.ByteArrayInputStream(
                page.replace("<!DOCTYPE html>", "").replace("<meta charset=\"utf-8\">", "").getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void badArgumentsGetOneClearLineAndTheirExitCode() throws Exception {
        Path small = dir.resolve("small.img");
        Files.write(small, new byte[1 << 20]);
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[4 << 20]);
        Object[][] cases = {
            {new String[] {}, ExitCodes.USAGE, "Missing required argument"},
            {new String[] {"--image", image.toString(), "--nbd", "nbd://localhost/x"}, ExitCodes.USAGE, "mutually exclusive"},
            {new String[] {"--device", "com.acme.AcmeDevice"}, ExitCodes.USAGE, "--device needs --classpath"},
            {new String[] {"--device", "com.acme.Nope", "--classpath", jar.toString()}, ExitCodes.USAGE, "no class com.acme.Nope in --classpath"},
            {new String[] {"--device", "java.lang.String", "--classpath", jar.toString()}, ExitCodes.USAGE, "is neither a dev.handoff.testkit.DeviceFactory nor a dev.handoff.device.BlockDevice"},
            {new String[] {"--device", "com.acme.AcmeDevice", "--classpath", dir.resolve("missing.jar").toString()}, ExitCodes.USAGE, "missing.jar does not exist"},
            {new String[] {"--image", dir.resolve("missing.img").toString()}, ExitCodes.BAD_IMAGE, "missing.img does not exist"},
            {new String[] {"--image", small.toString()}, ExitCodes.BAD_IMAGE, "has 1 MiB; the checks need at least 4 MiB"},
            {new String[] {"--image", image.toString(), "--check", "nope"}, ExitCodes.USAGE, "--check: no check nope"},
            {new String[] {"--image", image.toString(), "--seeds", "0"}, ExitCodes.USAGE, "--seeds must be at least 1"},
            {new String[] {"--image", image.toString(), "--budget", "5x"}, ExitCodes.USAGE, "--budget: not a duration: '5x'"},
            {new String[] {"--image", image.toString(), "--classpath", jar.toString()}, ExitCodes.USAGE, "--classpath is for --device"},
            {new String[] {"--nbd", "http://x/y"}, ExitCodes.USAGE, "--nbd:"},
            {new String[] {"--image", image.toString(), "--report", dir.resolve("r.txt").toString()}, ExitCodes.USAGE, "r.txt must end in .md or .html"},
            {new String[] {"--image", image.toString(), "--report", dir.toString() + "/"}, ExitCodes.USAGE, "--report: " + dir + " is a directory"},
            {new String[] {"--image", image.toString(), "--junit-xml", dir.resolve("no/such/dir/r.xml").toString()}, ExitCodes.USAGE, "--junit-xml: no directory " + dir.resolve("no/such/dir")},
        };
        for (Object[] c : cases) {
            Captured r = verify((String[]) c[0]);
            assertThat(r.exit()).as("%s: %s", List.of((String[]) c[0]), r).isEqualTo((int) c[1]);
            assertThat(r.errLines()).as("%s", List.of((String[]) c[0])).hasSize(1);
            assertThat(r.errLines().get(0)).startsWith("handoff verify: ").contains((String) c[2]);
            assertThat(r.out()).isEmpty();
        }
        assertThat(Files.readAllBytes(image)).containsOnly(0);
    }
}
