import { open } from "node:fs/promises";

/** What the dynamic section of a shared library says. */
export interface ElfDynamicInfo {
  /** DT_NEEDED: the libraries it links (`libcudart.so.13`, …). */
  needed: string[];
  /** Every name in the dynamic string table (symbols included). */
  dynamicStrings: string[];
}

/**
 * Reads DT_NEEDED and the dynamic string table of a 64-bit little-endian ELF file from
 * its section headers, without reading the code (a CUDA library is ~150 MB).
 * Throws when the file is not such an ELF file.
 */
export async function readElfDynamic(path: string): Promise<ElfDynamicInfo> {
  const handle = await open(path, "r");
  try {
    const read = async (position: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead < length) throw new Error(`${path}: cut short at byte ${position + bytesRead}`);
      return buffer;
    };
    const header = await read(0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path} is not an ELF file`);
    if (header[4] !== 2 || header[5] !== 1) throw new Error(`${path} is not a 64-bit little-endian ELF file`);
    const shoff = Number(header.readBigUInt64LE(0x28));
    const shentsize = header.readUInt16LE(0x3a);
    const shnum = header.readUInt16LE(0x3c);
    const sections = await read(shoff, shentsize * shnum);
    const section = (i: number) => ({
      type: sections.readUInt32LE(i * shentsize + 4),
      offset: Number(sections.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(sections.readBigUInt64LE(i * shentsize + 0x20)),
      link: sections.readUInt32LE(i * shentsize + 0x28),
    });
    const SHT_DYNAMIC = 6;
    const DT_NEEDED = 1n;
    for (let i = 0; i < shnum; i++) {
      const dynamic = section(i);
      if (dynamic.type !== SHT_DYNAMIC) continue;
      const strtab = section(dynamic.link);
      const strings = await read(strtab.offset, strtab.size);
      const entries = await read(dynamic.offset, dynamic.size);
      const needed: string[] = [];
      for (let at = 0; at + 16 <= entries.length; at += 16) {
        const tag = entries.readBigInt64LE(at);
        if (tag === 0n) break;
        if (tag !== DT_NEEDED) continue;
        const start = Number(entries.readBigUInt64LE(at + 8));
        const end = strings.indexOf(0, start);
        needed.push(strings.toString("latin1", start, end < 0 ? undefined : end));
      }
      return { needed, dynamicStrings: strings.toString("latin1").split("\0").filter(Boolean) };
    }
    return { needed: [], dynamicStrings: [] };
  } finally {
    await handle.close();
  }
}
