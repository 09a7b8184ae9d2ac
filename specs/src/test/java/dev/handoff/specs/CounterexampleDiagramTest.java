package dev.handoff.specs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import net.sourceforge.plantuml.FileFormat;
import net.sourceforge.plantuml.FileFormatOption;
import net.sourceforge.plantuml.SourceStringReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pieces that turn TLC's counterexample into a sequence diagram, on a short trace of the
 * mirror spec written here: TLC's values parsed, a step's changes found at the finest grain, the
 * acting lifeline and the Java named, a lasso drawn as a loop, and PlantUML able to draw the result.
 * (Every real counterexample is rendered by {@link ModelsTest}, which compares it with the
 * committed page.)
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class CounterexampleDiagramTest {
    private static final Path SPECS = Path.of(System.getProperty("specs.dir", ".")).toAbsolutePath();

    /** Three states of MirrorCopy: a guest starts a write (inline in Next), then writes the source. */
    private static String output(String ending) throws IOException {
        int next = nextLineOfGuestEnter();
        return """
                Error: Invariant CleanChunkInSync is violated.
                Error: The behavior up to this point is:
                State 1: <Initial predicate>
                /\\ src = <<<<1, 1>>>>
                /\\ writes = 0
                /\\ gs = ( g1 :>
                      [ v |-> 0,
                        pc |-> "idle" ] )
                /\\ tgt = <<<<0, 0>>>>
                /\\ ops = << [ k |-> 0, ph |-> "none" ] >>
                /\\ dirty = {}

                State 2: <Next line %d, col 5 to line %d, col 200 of module MirrorCopy>
                /\\ src = <<<<1, 1>>>>
                /\\ writes = 1
                /\\ gs = ( g1 :>
                      [ v |-> 2,
                        pc |-> "bgSource" ] )
                /\\ tgt = <<<<0, 0>>>>
                /\\ ops = << [ k |-> 0, ph |-> "none" ] >>
                /\\ dirty = {}

                State 3: <BgSource line 418, col 5 to line 424, col 65 of module MirrorCopy>
                /\\ src = <<<<2, 1>>>>
                /\\ writes = 1
                /\\ gs = ( g1 :>
                      [ v |-> 2,
                        pc |-> "bgMark" ] )
                /\\ tgt = <<<<0, 0>>>>
                /\\ ops = << [ k |-> 0, ph |-> "none" ] >>
                /\\ dirty = {}

                %s
                """.formatted(next, next, ending);
    }

    private static int nextLineOfGuestEnter() throws IOException {
        List<String> lines = Files.readAllLines(SPECS.resolve("tla/MirrorCopy/MirrorCopy.tla"));
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains(": GuestEnter(g, w)")) {
                return i + 1;
            }
        }
        throw new AssertionError("Next no longer applies GuestEnter inline");
    }

    @Test
    void tlcValuesParseIntoRecordsFunctionsAndSequencesAndTheRestStaysText() {
        TlaValue v = TlaValue.parse("( g1 :> [ v |-> 2, held |-> {1, 2} ] @@ g2 :> [ v |-> 0, held |-> {} ] )");
        assertThat(v).isInstanceOf(TlaValue.Fn.class);
        TlaValue.Rec g1 = (TlaValue.Rec) ((TlaValue.Fn) v).entries().get("g1");
        assertThat(g1.fields().get("held").text()).isEqualTo("{1, 2}");
        assertThat(TlaValue.parse("<<<<1, 1>>, <<2, 2>>>>").text()).isEqualTo("<<<<1, 1>>, <<2, 2>>>>");
        assertThat(TlaValue.parse("1..3").text()).isEqualTo("1..3");
        assertThat(TlaValue.parse("[epoch |-> 0, owner |-> NoNode]")).isInstanceOf(TlaValue.Rec.class);
        assertThat(TlaValue.parse("<< [ a |-> 1 ]  broken")).isEqualTo(new TlaValue.Atom("<< [ a |-> 1 ] broken"));
    }

    @Test
    void aStepsChangeIsShownAtTheFinestGrainBothValuesShare() {
        List<String> out = new ArrayList<>();
        TraceDiff.diff("src", TlaValue.parse("<<<<1, 1>>, <<0, 0>>>>"), TlaValue.parse("<<<<2, 1>>, <<0, 0>>>>"), out);
        TraceDiff.diff("job", TlaValue.parse("[st |-> \"created\", ready |-> FALSE]"),
                TlaValue.parse("[st |-> \"running\", ready |-> FALSE]"), out);
        TraceDiff.diff("dirty", TlaValue.parse("{}"), TlaValue.parse("1..1"), out);
        assertThat(out).containsExactly("src[1][1] = 2", "job.st = \"running\"", "dirty = 1..1");
    }

    @Test
    void eachStepIsAnArrowFromItsActorToTheStateItChangedNamingTheActionAndItsJava() throws IOException {
        TlcTrace trace = TlcTrace.parse(output(""));
        assertThat(trace.states()).hasSize(3);
        String puml = SequenceDiagram.render("t", trace, SpecSource.read(SPECS.resolve("tla/MirrorCopy/MirrorCopy.tla")),
                Cast.of("MirrorCopy"), "CleanChunkInSync", "invariant");
        assertThat(puml)
                .contains("actor \"guest g1\" as g1", "database \"source\" as src")
                // the inline step of Next is named by the operator it applies
                .contains("g1 -> g1 : **2** GuestEnter")
                .contains("g1 -> src : **3** BgSource (MirrorFilter.writeBackground)\\nsrc[1][1] = 2")
                .contains("hnote over g1 : gs.pc = \"bgMark\"")
                .contains("**CleanChunkInSync** (invariant) is false in state 3")
                // a lifeline that takes no part is left out; a bounding counter is not shown
                .doesNotContain("as env", "writes = 1");
        assertThat(svg(puml)).contains("<svg").doesNotContain("Syntax Error");
    }

    @Test
    void aLassoIsALoopThatRepeatsForeverAndStutteringIsSaid() throws IOException {
        TlcTrace lasso = TlcTrace.parse(output(
                "Back to state 2: <BgSource line 418, col 5 to line 424, col 65 of module MirrorCopy>"));
        assertThat(lasso.loopsBackTo()).isEqualTo(2);
        String puml = SequenceDiagram.render("t", lasso, SpecSource.read(SPECS.resolve("tla/MirrorCopy/MirrorCopy.tla")),
                Cast.of("MirrorCopy"), "ReadyIfWritesStop", "temporal property");
        assertThat(puml).contains("group loop [repeats forever from state 2]", "**back to 2** BgSource",
                "states 2 to 3 repeat forever");
        assertThat(svg(puml)).doesNotContain("Syntax Error");

        TlcTrace stutter = TlcTrace.parse(output("State 4: Stuttering"));
        assertThat(stutter.stutters()).isTrue();
        assertThat(SequenceDiagram.render("t", stutter, SpecSource.read(SPECS.resolve("tla/MirrorCopy/MirrorCopy.tla")),
                Cast.of("MirrorCopy"), "ReadyIfWritesStop", "temporal property"))
                .contains("after state 3 nothing happens, forever");
    }

    @Test
    void aPageOrPictureThatIsNotWhatTheCounterexampleMakesIsStale(@TempDir Path specs) throws IOException {
        Path tla = Files.createDirectories(specs.resolve("tla/MirrorCopy"));
        Files.copy(SPECS.resolve("tla/MirrorCopy/MirrorCopy.tla"), tla.resolve("MirrorCopy.tla"));
        Files.writeString(tla.resolve("MCMirrorCopy_Example_bug.cfg"), "\\* Broken: an example.\nCONSTANTS\n    Bug = \"Example\"\n");
        Model model = new Model("MirrorCopy", "MCMirrorCopy.tla", "MCMirrorCopy_Example_bug.cfg", "default",
                "CleanChunkInSync", null, null, 3L, 1, 60);
        TlcRun run = new TlcRun(model, 12, "CleanChunkInSync", 3, -1, 3, 1.0, List.of(), output(""));
        Path page = specs.resolve("counterexamples/MCMirrorCopy_Example_bug.md");
        Path picture = specs.resolve("counterexamples/MCMirrorCopy_Example_bug.svg");

        assertThat(CounterexamplePage.checkOrUpdate(model, run, specs, false)).contains("is missing or stale");
        assertThat(CounterexamplePage.checkOrUpdate(model, run, specs, true)).isNull();
        assertThat(Files.readString(page)).contains("switches on the broken variant `Example`", "> Broken: an example.",
                "![MCMirrorCopy_Example_bug as a sequence diagram](MCMirrorCopy_Example_bug.svg)", "```plantuml\n@startuml");
        assertThat(Files.readString(picture)).contains("<svg", "plantuml-sha256");
        assertThat(CounterexamplePage.checkOrUpdate(model, run, specs, false)).isNull();

        // the spec's text changes what the page says (here the invariant's comment): stale
        Files.writeString(tla.resolve("MirrorCopy.tla"), Files.readString(tla.resolve("MirrorCopy.tla"))
                .replace("the key invariant", "the main invariant"));
        assertThat(CounterexamplePage.checkOrUpdate(model, run, specs, false)).contains("is missing or stale");
        CounterexamplePage.checkOrUpdate(model, run, specs, true);
        // a picture not rendered from the page's text: stale
        Files.writeString(picture, Files.readString(picture).replaceFirst("plantuml-sha256 [0-9a-f]{8}", "plantuml-sha256 00000000"));
        assertThat(CounterexamplePage.checkOrUpdate(model, run, specs, false)).contains("was not rendered from the page");
    }

    private static String svg(String puml) throws IOException {
        System.setProperty("java.awt.headless", "true");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        new SourceStringReader(puml).outputImage(out, new FileFormatOption(FileFormat.SVG, false));
        return out.toString(StandardCharsets.UTF_8);
    }
}
