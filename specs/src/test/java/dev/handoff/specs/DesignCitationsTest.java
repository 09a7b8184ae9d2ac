package dev.handoff.specs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * docs/DESIGN.md is the one place for the semantics, and the rest of the repository cites its
 * sections: every citation resolves. A citation is {@code DESIGN §N.M} (also {@code DESIGN.md §N},
 * and the sections that continue it: {@code DESIGN §2.4, §3.1}, {@code §2.4–§2.6}); {@code §N} or
 * {@code §N.M} names a heading of DESIGN.md, {@code §N.M.K} item K of the numbered list under
 * §N.M. Inside DESIGN.md every {@code §} is such a citation. Text files only, build output, hidden
 * folders and this file (whose second test cites missing sections on purpose) skipped.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class DesignCitationsTest {
    private static final Path ROOT = Path.of(System.getProperty("specs.dir", ".")).toAbsolutePath().getParent();
    private static final Set<String> TEXT = Set.of("java", "tla", "cfg", "md", "json", "sh", "xml", "c", "txt",
            "patch", "fio");
    private static final String SECTION = "§+\\s*\\d+(?:\\.\\d+)*";
    /** DESIGN, then a chain of sections; a comment's line break and leading star or slashes may fall inside it. */
    private static final Pattern CITATION = Pattern.compile("DESIGN(?:\\.md)?[`)\\]]*[\\s*/#]*(" + SECTION
            + "(?:[\\s*/#]*(?:,|;|/|–|-|and|or|to)[\\s*/#]*§*\\s*\\d+(?:\\.\\d+)*)*)");
    /** This file: its own test cites missing sections on purpose. */
    private static final Path SELF = Path.of("src/test/java/dev/handoff/specs/DesignCitationsTest.java");
    private static final Pattern NUMBER = Pattern.compile("\\d+(?:\\.\\d+)*");
    private static final Pattern HEADING = Pattern.compile("^#{2,3}\\s+(\\d+(?:\\.\\d+)?)[.\\s]");
    private static final Pattern ITEM = Pattern.compile("^(\\d+)\\.\\s");

    @Test
    void everyDesignCitationInTheRepositoryNamesASectionOrItemThatExists() throws IOException {
        Path designFile = ROOT.resolve("docs/DESIGN.md");
        Design design = Design.parse(Files.readString(designFile, StandardCharsets.UTF_8));
        List<String> problems = new ArrayList<>();
        int[] citations = {0};
        try (Stream<Path> files = Files.walk(ROOT)) {
            Path self = ROOT.resolve("specs").resolve(SELF);
            files.filter(f -> isSource(f) && !f.equals(self)).forEach(f -> {
                String text = read(f);
                if (text != null) {
                    List<String> cited = f.equals(designFile) ? sectionsInDesign(text) : citations(text);
                    citations[0] += cited.size();
                    for (String n : cited) {
                        if (!design.has(n)) {
                            problems.add(ROOT.relativize(f) + ": DESIGN §" + n);
                        }
                    }
                }
            });
        }
        assertThat(problems).as("citations of DESIGN sections that docs/DESIGN.md does not have").isEmpty();
        assertThat(citations[0]).as("citations found (the scan reads the repository)").isGreaterThan(100);
    }

    @Test
    void aCitationOfAMissingSectionOrItemIsReported() {
        Design design = Design.parse("""
                ## 2. The mirror
                ### 2.4 Complete
                ## 4. Ownership
                ### 4.5 Invariants
                1. one
                2. two
                """);
        List<String> cited = citations("""
                // the gate (DESIGN §2.4, §2.9) and the copy (DESIGN
                //  §3.1); ownership (DESIGN §4.5.2, §4.5.7), DESIGN.md §2, RFC 8446 §4.2
                """);
        assertThat(cited).containsExactly("2.4", "2.9", "3.1", "4.5.2", "4.5.7", "2");
        assertThat(cited).filteredOn(n -> !design.has(n)).containsExactly("2.9", "3.1", "4.5.7");
    }

    /** The section numbers DESIGN citations in {@code text} name. */
    static List<String> citations(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = CITATION.matcher(text);
        while (m.find()) {
            Matcher n = NUMBER.matcher(m.group(1));
            while (n.find()) {
                out.add(n.group());
            }
        }
        return out;
    }

    private static List<String> sectionsInDesign(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("§\\s*(\\d+(?:\\.\\d+)*)").matcher(text);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    /** DESIGN.md's numbered headings and the numbered list items under each. */
    record Design(Set<String> headings, Map<String, Set<String>> items) {
        static Design parse(String text) {
            Set<String> headings = new HashSet<>();
            Map<String, Set<String>> items = new HashMap<>();
            String current = null;
            for (String line : text.split("\n")) {
                Matcher h = HEADING.matcher(line);
                if (h.find()) {
                    current = h.group(1);
                    headings.add(current);
                    continue;
                }
                Matcher i = ITEM.matcher(line);
                if (i.find() && current != null) {
                    items.computeIfAbsent(current, k -> new HashSet<>()).add(i.group(1));
                }
            }
            return new Design(headings, items);
        }

        boolean has(String number) {
            String[] p = number.split("\\.");
            if (p.length <= 2) {
                return headings.contains(number);
            }
            String section = p[0] + "." + p[1];
            return p.length == 3 && headings.contains(section) && items.getOrDefault(section, Set.of()).contains(p[2]);
        }
    }

    private static boolean isSource(Path f) {
        Path rel = ROOT.relativize(f);
        for (Path part : rel) {
            String s = part.toString();
            if (s.equals("target") || s.equals("node_modules") || s.startsWith(".")) {
                return false;
            }
        }
        String name = f.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return Files.isRegularFile(f) && dot > 0 && TEXT.contains(name.substring(dot + 1));
    }

    /** The file's text, or null for one that is not UTF-8. */
    private static String read(Path f) {
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(f))).toString();
        } catch (CharacterCodingException notText) {
            return null;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
