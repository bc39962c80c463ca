import { Inject, Injectable, Optional } from '@nestjs/common';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { JAVA_SOURCE_ROOT, POM_PATH, PluginProject, checkProjectPath } from './plugin-project';

export type BuildTool = 'mvn' | 'javac';

export interface CompileResult {
  success: boolean;
  durationMs: number;
  log: string;
  tool: BuildTool | 'none';
}

export interface CompileOptions {
  timeoutMs?: number;
  outputCapBytes?: number;
}

/** A command run verbatim (never through a shell) in the project directory instead of the default build. */
export interface BuildCommand {
  command: string;
  args: string[];
  /** The tool this command stands in for, reported in the result. */
  reportAs: BuildTool;
}

export interface PluginCompilerOptions extends CompileOptions {
  /** 'auto' (default): Maven offline first, javac when Maven is missing or cannot resolve offline. */
  tool?: BuildTool | 'auto';
  command?: BuildCommand;
  mvnExecutable?: string;
  javacExecutable?: string;
  /** Java release the sources are compiled for (javac --release, maven.compiler.release). */
  javaRelease?: number;
  /** Parent of the per-build temporary directories. */
  tmpRoot?: string;
  /** Where offline Maven finds artifacts; dependencies missing here send 'auto' straight to javac. */
  mavenLocalRepository?: string;
}

export const PLUGIN_COMPILER_OPTIONS = Symbol('PLUGIN_COMPILER_OPTIONS');

const DEFAULTS = {
  timeoutMs: 60_000,
  outputCapBytes: 64 * 1024,
  tool: 'auto',
  mvnExecutable: 'mvn',
  javacExecutable: 'javac',
  javaRelease: 17,
} as const;

/** Grace period for pipes to close after the process group was killed. */
const KILL_GRACE_MS = 2_000;
const MAX_LISTED_ARTIFACTS = 20;

// Maven output lines that mean "this could not be fetched offline", as opposed to a compile error.
const MAVEN_RESOLUTION_FAILURE =
  /could not be resolved|Could not resolve dependencies|Could not find artifact|offline mode|has not been downloaded from it before|Non-resolvable|PluginResolutionException|DependencyResolutionException|ArtifactResolutionException|Failed to read artifact descriptor/i;

// Only plain coordinates are carried over from the model's pom; anything else stays out of the build.
const MAVEN_COORDINATE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAVEN_VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;

interface RunResult {
  output: string;
  exitCode: number | null;
  timedOut: boolean;
  missing: boolean;
  spawnError?: string;
}

interface BuildDirs {
  root: string;
  project: string;
}

/**
 * Compiles a generated plugin in a throwaway directory.
 *
 * Maven never sees the model's pom.xml: a pom is a build script (exec-maven-plugin, antrun, extensions,
 * surefire running the model's tests), so Maven runs a pom this service writes, with pinned plugin versions,
 * tests skipped, annotation processing off and only the dependency coordinates copied from the model's pom.
 * Maven runs offline (`-o`), so it works only when ~/.m2 already holds those plugins and dependencies. In
 * 'auto' mode a dependency absent from the local repository skips Maven up front (saving a ~2 s JVM start),
 * and a Maven run that fails on resolution (e.g. the pinned plugins are not cached) falls back to plain javac,
 * which is honest about missing Bukkit classes.
 */
@Injectable()
export class PluginCompilerService {
  private readonly options: Required<Omit<PluginCompilerOptions, 'command'>> & Pick<PluginCompilerOptions, 'command'>;

  constructor(@Optional() @Inject(PLUGIN_COMPILER_OPTIONS) options: PluginCompilerOptions = {}) {
    this.options = {
      ...DEFAULTS,
      tmpRoot: tmpdir(),
      mavenLocalRepository: join(homedir(), '.m2', 'repository'),
      ...stripUndefined(options ?? {}),
    };
  }

  async compile(project: PluginProject, options: CompileOptions = {}): Promise<CompileResult> {
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const outputCapBytes = options.outputCapBytes ?? this.options.outputCapBytes;
    const deadline = started + timeoutMs;
    let root = '';
    const finish = (tool: CompileResult['tool'], success: boolean, log: string[]): CompileResult => ({
      success,
      durationMs: Date.now() - started,
      log: root ? relativiseLog(log.join('\n'), root) : log.join('\n'),
      tool,
    });

    const problem = findPathProblem(project);
    if (problem) return finish('none', false, [`refused to build: ${problem}`]);

    root = await mkdtemp(join(this.options.tmpRoot, 'plugin-build-'));
    try {
      const dirs: BuildDirs = { root, project: join(root, 'project') };
      const writeProblem = await writeProject(dirs.project, project);
      if (writeProblem) return finish('none', false, [`refused to build: ${writeProblem}`]);
      const log: string[] = [];
      const remaining = () => Math.max(0, deadline - Date.now());

      if (this.options.command) {
        const { command, args, reportAs } = this.options.command;
        log.push(`$ ${[command, ...args].join(' ')}`);
        const run = await runProcess(command, args, dirs.project, remaining(), outputCapBytes);
        return finish(reportAs, describeRun(run, command, log), log);
      }

      if (this.options.tool !== 'javac') {
        const mvn = await this.runMaven(project, dirs, remaining(), outputCapBytes, log);
        if (mvn === 'missing') return finish('none', false, log);
        if (mvn !== 'fallback') return finish('mvn', mvn, log);
        if (remaining() === 0) return finish('mvn', false, [...log, `build timed out after ${timeoutMs} ms`]);
      }
      const javac = await this.runJavac(project, dirs, remaining(), outputCapBytes, log);
      return finish(javac === 'missing' ? 'none' : 'javac', javac === true, log);
    } finally {
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** Resolves to the build's success, 'fallback' when javac should try instead, or 'missing'. */
  private async runMaven(
    project: PluginProject,
    dirs: BuildDirs,
    timeoutMs: number,
    outputCapBytes: number,
    log: string[],
  ): Promise<boolean | 'fallback' | 'missing'> {
    const { pom, dependencies, skipped } = renderBuildPom(project, this.options.javaRelease);
    const fallback = this.options.tool === 'auto';
    if (fallback) {
      const absent = await missingFromLocalRepository(this.options.mavenLocalRepository, dependencies);
      if (absent.length) {
        log.push(`mvn: skipped; not in the local Maven repository, so not resolvable offline: ${absent.join(', ')}`);
        return 'fallback';
      }
    }
    const buildDir = join(dirs.root, 'build');
    await mkdir(buildDir);
    await writeFile(join(buildDir, 'pom.xml'), pom, { flag: 'wx' });
    log.push(
      `mvn: offline package with the service's build pom; dependencies: ${dependencies.join(', ') || '(none)'}` +
        (skipped.length ? `; ignored: ${skipped.join(', ')}` : ''),
    );
    const args = ['-q', '-o', '-B', '-Dstyle.color=never', '-f', join(buildDir, 'pom.xml'), 'package'];
    const run = await runProcess(this.options.mvnExecutable, args, buildDir, timeoutMs, outputCapBytes);

    if (run.missing) {
      log.push(`mvn: "${this.options.mvnExecutable}" not found${fallback ? '; using javac' : ''}`);
      return fallback ? 'fallback' : 'missing';
    }
    if (!run.timedOut && run.exitCode !== 0 && fallback && MAVEN_RESOLUTION_FAILURE.test(run.output)) {
      const reason = run.output.split('\n').find((line) => MAVEN_RESOLUTION_FAILURE.test(line)) ?? '';
      log.push(`mvn: cannot resolve plugins or dependencies offline; using javac`, `  ${reason.trim()}`);
      return 'fallback';
    }
    const success = describeRun(run, this.options.mvnExecutable, log);
    if (success) log.push(`produced: ${(await listFiles(join(buildDir, 'target'), '.jar')).join(', ')}`);
    return success;
  }

  /** Resolves to the build's success, or 'missing' when javac is not installed. */
  private async runJavac(
    project: PluginProject,
    dirs: BuildDirs,
    timeoutMs: number,
    outputCapBytes: number,
    log: string[],
  ): Promise<boolean | 'missing'> {
    const sources = project.files.filter((file) => file.path.endsWith('.java'));
    if (sources.length === 0) {
      log.push('javac: the project has no .java sources');
      return false;
    }
    const outDir = join(dirs.root, 'out');
    await mkdir(outDir);
    // './' keeps a source name from ever reading as an option or an @argfile.
    const args = [
      '--release', String(this.options.javaRelease),
      '-encoding', 'UTF-8',
      '-proc:none',
      '-implicit:none',
      '-cp', '../out',
      '-sourcepath', JAVA_SOURCE_ROOT,
      '-d', '../out',
      ...sources.map((file) => `./${file.path}`),
    ];
    log.push(`javac: compiling ${sources.length} source file(s) into out/`);
    const run = await runProcess(this.options.javacExecutable, args, dirs.project, timeoutMs, outputCapBytes);
    if (run.missing) {
      log.push(`javac: "${this.options.javacExecutable}" not found; no Java compiler is installed`);
      return 'missing';
    }
    const success = describeRun(run, this.options.javacExecutable, log);
    if (success) {
      log.push(`produced: ${(await listFiles(outDir, '.class')).join(', ')}`);
    } else if (/\borg\.bukkit\b/.test(run.output)) {
      log.push('note: the Bukkit/Spigot API is not available offline here, so sources importing org.bukkit cannot compile with plain javac');
    }
    return success;
  }
}

/** Tool output names files by their temp path; the caller only knows project-relative paths. */
function relativiseLog(log: string, root: string): string {
  const prefixes = [join(root, 'build', '..', 'project'), join(root, 'project'), root].map((dir) => dir + sep);
  return prefixes.reduce((text, prefix) => text.replaceAll(prefix, ''), log);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function findPathProblem(project: PluginProject): string | undefined {
  for (const file of project.files) {
    const problem = checkProjectPath(file.path);
    if (problem) return `path "${file.path}" ${problem}`;
  }
  return undefined;
}

/** Writes every file below `projectDir`; returns a reason instead when one cannot be written there. */
async function writeProject(projectDir: string, project: PluginProject): Promise<string | undefined> {
  await mkdir(projectDir);
  for (const file of project.files) {
    const target = resolve(projectDir, file.path);
    const rel = relative(projectDir, target);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return `path "${file.path}" escapes the build directory`;
    try {
      await mkdir(dirname(target), { recursive: true });
      // 'wx' refuses to overwrite, so duplicate paths or a file/folder clash cannot replace an earlier file.
      await writeFile(target, file.content, { flag: 'wx' });
    } catch (error) {
      return `cannot write "${file.path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
  }
  return undefined;
}

/** Appends the outcome of a finished run to the log and says whether it succeeded. */
function describeRun(run: RunResult, command: string, log: string[]): boolean {
  if (run.output) log.push(run.output.trimEnd());
  if (run.missing) log.push(`"${command}" not found`);
  else if (run.spawnError) log.push(`could not start "${command}": ${run.spawnError}`);
  else if (run.timedOut) log.push(`build timed out; process tree killed`);
  else if (run.exitCode !== 0) log.push(`"${command}" exited with code ${run.exitCode}`);
  return !run.missing && !run.spawnError && !run.timedOut && run.exitCode === 0;
}

async function missingFromLocalRepository(repository: string, coordinates: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const coordinate of coordinates) {
    const [groupId, artifactId, version] = coordinate.split(':');
    const dir = join(repository, ...groupId.split('.'), artifactId, version);
    const entries = await readdir(dir).catch(() => [] as string[]);
    if (!entries.some((entry) => entry.endsWith('.jar'))) missing.push(coordinate);
  }
  return missing;
}

async function listFiles(dir: string, extension: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const found = entries.filter((entry) => entry.endsWith(extension)).sort();
  const listed = found.slice(0, MAX_LISTED_ARTIFACTS).map((entry) => entry.split(sep).join('/'));
  return found.length > listed.length ? [...listed, `(+${found.length - listed.length} more)`] : listed;
}

/**
 * Runs one command without a shell in its own process group, so a timeout can kill the whole tree
 * (mvn is a script that starts a JVM). stdout and stderr share one capped buffer in arrival order.
 */
function runProcess(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  outputCapBytes: number,
): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let dropped = 0;
    let timedOut = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const child = spawn(command, args, { cwd, shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });

    const collect = (chunk: Buffer) => {
      const room = outputCapBytes - kept;
      if (room > 0) {
        const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
        chunks.push(part);
        kept += part.length;
      }
      dropped += Math.max(0, chunk.length - Math.max(0, room));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);

    const settle = (result: Omit<RunResult, 'output'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      // Maven's jansi emits colour resets even in batch mode.
      let output = Buffer.concat(chunks).toString('utf8').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      if (dropped > 0) output += `\n[output truncated: ${dropped} more bytes]`;
      resolveRun({ ...result, output });
    };

    const killTree = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };

    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
      // A grandchild that left the group could hold the pipes open; do not wait for it forever.
      graceTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        settle({ exitCode: null, timedOut, missing: false });
      }, KILL_GRACE_MS);
    }, timeoutMs);

    child.on('error', (error: NodeJS.ErrnoException) => {
      const missing = error.code === 'ENOENT';
      settle({ exitCode: null, timedOut, missing, spawnError: missing ? undefined : error.message });
    });
    child.on('close', (code) => settle({ exitCode: code, timedOut, missing: false }));
  });
}

/** The pom Maven actually builds: sources from ../project, pinned plugins, nothing that runs code. */
export function renderBuildPom(
  project: PluginProject,
  javaRelease: number,
): { pom: string; dependencies: string[]; skipped: string[] } {
  const modelPom = project.files.find((file) => file.path === POM_PATH)?.content ?? '';
  const { dependencies, skipped } = extractDependencies(modelPom);
  const dependencyXml = dependencies
    .map(
      (d) =>
        `    <dependency><groupId>${d.groupId}</groupId><artifactId>${d.artifactId}</artifactId>` +
        `<version>${d.version}</version><scope>provided</scope></dependency>`,
    )
    .join('\n');
  const plugin = (artifactId: string, version: string, configuration = '') =>
    `      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>${artifactId}</artifactId>` +
    `<version>${version}</version>${configuration}</plugin>`;
  const pom = `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>generated.plugin</groupId>
  <artifactId>${project.name}</artifactId>
  <version>${project.version}</version>
  <packaging>jar</packaging>
  <properties>
    <maven.compiler.release>${javaRelease}</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.test.skip>true</maven.test.skip>
  </properties>
  <dependencies>
${dependencyXml}
  </dependencies>
  <build>
    <sourceDirectory>\${project.basedir}/../project/src/main/java</sourceDirectory>
    <resources><resource><directory>\${project.basedir}/../project/src/main/resources</directory></resource></resources>
    <plugins>
${plugin('maven-resources-plugin', '3.3.1')}
${plugin('maven-compiler-plugin', '3.13.0', '<configuration><proc>none</proc></configuration>')}
${plugin('maven-surefire-plugin', '3.2.5')}
${plugin('maven-jar-plugin', '3.4.1')}
    </plugins>
  </build>
</project>
`;
  return {
    pom,
    dependencies: dependencies.map((d) => `${d.groupId}:${d.artifactId}:${d.version}`),
    skipped,
  };
}

interface Dependency {
  groupId: string;
  artifactId: string;
  version: string;
}

function extractDependencies(pom: string): { dependencies: Dependency[]; skipped: string[] } {
  const xml = pom.replace(/<!--[\s\S]*?-->/g, '');
  const properties = new Map<string, string>();
  const propertiesBlock = /<properties>([\s\S]*?)<\/properties>/.exec(xml)?.[1] ?? '';
  for (const match of propertiesBlock.matchAll(/<([A-Za-z0-9_.-]+)>\s*([^<]*?)\s*<\/\1>/g)) {
    properties.set(match[1], match[2]);
  }
  const tag = (block: string, name: string) => {
    const raw = new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(block)?.[1];
    return raw?.replace(/^\$\{([A-Za-z0-9_.-]+)\}$/, (whole, key: string) => properties.get(key) ?? whole);
  };

  const dependencies: Dependency[] = [];
  const skipped: string[] = [];
  for (const [, block] of xml.matchAll(/<dependency>([\s\S]*?)<\/dependency>/g)) {
    const groupId = tag(block, 'groupId') ?? '';
    const artifactId = tag(block, 'artifactId') ?? '';
    const version = tag(block, 'version') ?? '';
    const scope = tag(block, 'scope') ?? 'compile';
    const label = `${groupId}:${artifactId}:${version}`;
    if (scope === 'test') continue;
    const plain = MAVEN_COORDINATE.test(groupId) && MAVEN_COORDINATE.test(artifactId) && MAVEN_VERSION.test(version);
    if (!plain || !['compile', 'provided', 'runtime'].includes(scope)) skipped.push(label);
    else if (!dependencies.some((d) => d.groupId === groupId && d.artifactId === artifactId)) {
      dependencies.push({ groupId, artifactId, version });
    }
  }
  return { dependencies, skipped };
}
