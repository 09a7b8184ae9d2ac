package dev.handoff.nbd;

import java.io.ByteArrayOutputStream;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;
import java.util.Map;

/**
 * Decodes the unencrypted private keys that OpenSSL and certtool write: PKCS#8
 * ({@code PRIVATE KEY}: RSA, RSASSA-PSS, EC, Ed25519, Ed448), PKCS#1 ({@code RSA PRIVATE KEY}) and
 * SEC 1 ({@code EC PRIVATE KEY}). The JDK reads only PKCS#8, so the other two are wrapped into a
 * PKCS#8 structure first (RFC 5208: version, algorithm identifier, the key as an octet string),
 * which takes the few DER primitives below and nothing more.
 */
final class PrivateKeyDecoder {
    private static final byte[] OID_RSA = oid("2a864886f70d010101");       // 1.2.840.113549.1.1.1
    private static final byte[] OID_EC = oid("2a8648ce3d0201");            // 1.2.840.10045.2.1
    private static final Map<String, String> ALGORITHMS = Map.of(
            "2a864886f70d010101", "RSA",
            "2a864886f70d01010a", "RSASSA-PSS",                          // 1.2.840.113549.1.1.10
            "2a8648ce3d0201", "EC",
            "2b6570", "Ed25519",                                          // 1.3.101.112
            "2b6571", "Ed448");                                           // 1.3.101.113

    private static final int SEQUENCE = 0x30;
    private static final int INTEGER = 0x02;
    private static final int OCTET_STRING = 0x04;
    private static final int NULL = 0x05;
    private static final int OBJECT_ID = 0x06;
    private static final int CONTEXT_0 = 0xa0;

    private PrivateKeyDecoder() {
    }

    /** Whether a PEM block of this type holds a private key this class decodes. */
    static boolean isPrivateKey(String pemType) {
        return pemType.equals("PRIVATE KEY") || pemType.equals("RSA PRIVATE KEY") || pemType.equals("EC PRIVATE KEY");
    }

    /** The key in a PEM block of one of the three types; the message says what is wrong otherwise. */
    static PrivateKey decode(String pemType, byte[] der) throws GeneralSecurityException {
        byte[] pkcs8 = switch (pemType) {
            case "PRIVATE KEY" -> der;
            case "RSA PRIVATE KEY" -> pkcs8(tlv(SEQUENCE, concat(tlv(OBJECT_ID, OID_RSA), tlv(NULL, new byte[0]))), der);
            case "EC PRIVATE KEY" -> pkcs8(tlv(SEQUENCE, concat(tlv(OBJECT_ID, OID_EC), curveOf(der))), der);
            default -> throw new GeneralSecurityException("a PEM block of type '" + pemType + "' is not a private key");
        };
        String algorithm = algorithmOf(pkcs8);
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
    }

    /** The JDK's name for the algorithm of a PKCS#8 PrivateKeyInfo. */
    private static String algorithmOf(byte[] pkcs8) throws GeneralSecurityException {
        Der info = new Der(pkcs8, 0, pkcs8.length).enter(SEQUENCE);
        info.skip(INTEGER);                                     // version
        Der algorithmId = info.enter(SEQUENCE);
        byte[] oid = algorithmId.value(OBJECT_ID);
        String name = ALGORITHMS.get(hex(oid));
        if (name == null) {
            throw new GeneralSecurityException("unsupported private key algorithm (OID bytes " + hex(oid) + ")");
        }
        return name;
    }

    /** The named-curve parameter ([0] OID) of a SEC 1 ECPrivateKey, as a whole OID TLV. */
    private static byte[] curveOf(byte[] sec1) throws GeneralSecurityException {
        Der key = new Der(sec1, 0, sec1.length).enter(SEQUENCE);
        key.skip(INTEGER);                                      // version 1
        key.skip(OCTET_STRING);                                 // the private value
        while (key.hasMore()) {
            if (key.peekTag() == CONTEXT_0) {
                Der parameters = key.enter(CONTEXT_0);
                byte[] oid = parameters.value(OBJECT_ID);
                return tlv(OBJECT_ID, oid);
            }
            key.skip(key.peekTag());
        }
        throw new GeneralSecurityException("the EC private key does not name its curve");
    }

    private static byte[] pkcs8(byte[] algorithmIdentifier, byte[] key) {
        return tlv(SEQUENCE, concat(tlv(INTEGER, new byte[] {0}), algorithmIdentifier, tlv(OCTET_STRING, key)));
    }

    /* ---------------- DER ---------------- */

    /** A tag-length-value encoding with a definite length. */
    static byte[] tlv(int tag, byte[] value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(value.length + 6);
        out.write(tag);
        int n = value.length;
        if (n < 0x80) {
            out.write(n);
        } else {
            int bytes = (32 - Integer.numberOfLeadingZeros(n) + 7) / 8;
            out.write(0x80 | bytes);
            for (int i = bytes - 1; i >= 0; i--) {
                out.write(n >>> (8 * i));
            }
        }
        out.writeBytes(value);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    private static byte[] oid(String hex) {
        byte[] b = new byte[hex.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    private static String hex(byte[] bytes) {
        StringBuilder s = new StringBuilder();
        for (byte b : bytes) {
            s.append(String.format("%02x", b & 0xff));
        }
        return s.toString();
    }

    /**
     * A cursor over the DER elements between {@code position} and {@code end}: reads one element at
     * a time, checking every length against the bytes that remain.
     */
    private static final class Der {
        private final byte[] bytes;
        private int position;
        private final int end;

        Der(byte[] bytes, int position, int end) {
            this.bytes = bytes;
            this.position = position;
            this.end = end;
        }

        boolean hasMore() {
            return position < end;
        }

        int peekTag() throws GeneralSecurityException {
            if (position >= end) {
                throw malformed();
            }
            return bytes[position] & 0xff;
        }

        /** The contents of the next element, which must have {@code tag}, as a cursor. */
        Der enter(int tag) throws GeneralSecurityException {
            int[] span = next(tag);
            return new Der(bytes, span[0], span[1]);
        }

        byte[] value(int tag) throws GeneralSecurityException {
            int[] span = next(tag);
            return Arrays.copyOfRange(bytes, span[0], span[1]);
        }

        void skip(int tag) throws GeneralSecurityException {
            next(tag);
        }

        private int[] next(int tag) throws GeneralSecurityException {
            if (peekTag() != tag) {
                throw malformed();
            }
            int p = position + 1;
            if (p >= end) {
                throw malformed();
            }
            int first = bytes[p++] & 0xff;
            long length;
            if (first < 0x80) {
                length = first;
            } else {
                int count = first & 0x7f;
                if (count == 0 || count > 4 || p + count > end) {
                    throw malformed();
                }
                length = 0;
                for (int i = 0; i < count; i++) {
                    length = (length << 8) | (bytes[p++] & 0xff);
                }
            }
            if (length > end - p) {
                throw malformed();
            }
            position = p + (int) length;
            return new int[] {p, position};
        }

        private static GeneralSecurityException malformed() {
            return new GeneralSecurityException("malformed private key (bad DER structure)");
        }
    }
}
