/**
 * Jest's TypeScript transform: esbuild (tsx's own compiler, so tests run the code as `node --import tsx` runs it)
 * strips the types, file by file. It does not check them: `npm test` runs `tsc --noEmit` beside jest for that.
 */
const { createHash } = require("node:crypto");
const esbuild = require("esbuild");

/** As tsconfig.json compiles: ES2022 class fields, CommonJS. */
const OPTIONS = { loader: "ts", format: "cjs", target: "es2022", platform: "node", sourcemap: "external" };

module.exports = {
  /**
   * @param {string} source
   * @param {string} filename
   * @param {{ configString: string }} options
   */
  getCacheKey(source, filename, { configString }) {
    return createHash("sha256")
      .update(`${esbuild.version}\0${JSON.stringify(OPTIONS)}\0${filename}\0${configString}\0`)
      .update(source)
      .digest("hex");
  },
  /**
   * @param {string} source
   * @param {string} filename
   */
  process(source, filename) {
    const { code, map } = esbuild.transformSync(source, { ...OPTIONS, sourcefile: filename });
    return { code, map };
  },
};
