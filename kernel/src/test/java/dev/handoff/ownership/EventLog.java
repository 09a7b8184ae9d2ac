package dev.handoff.ownership;

import java.util.ArrayList;
import java.util.List;

/** An ordered, thread-safe log of what reached a device or a record store, for order assertions. */
final class EventLog {
    private final List<String> events = new ArrayList<>();

    synchronized void add(String event) {
        events.add(event);
    }

    synchronized List<String> snapshot() {
        return List.copyOf(events);
    }

    synchronized void clear() {
        events.clear();
    }

    synchronized long count(String prefix) {
        return events.stream().filter(e -> e.startsWith(prefix)).count();
    }
}
