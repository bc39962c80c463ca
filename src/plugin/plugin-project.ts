import { MAX_JSON_ANSWER_CHARS, parseJsonAnswer } from '../ai/json-answer';

export interface PluginFile {
  path: string;
  content: string;
}

export interface PluginProject {
  name: string;
  packageName: string;
  /** Fully qualified, always inside `packageName`. */
  mainClass: string;
  version: string;
  description?: string;
  files: PluginFile[];
}

export class PluginParseError extends Error {
  override readonly name = 'PluginParseError';
}

export const PLUGIN_YML_PATH = 'src/main/resources/plugin.yml';
export const POM_PATH = 'pom.xml';
export const JAVA_SOURCE_ROOT = 'src/main/java/';
export const SPIGOT_API_VERSION = '1.20.4-R0.1-SNAPSHOT';
export const PLUGIN_API_VERSION = '1.20';
export const DEFAULT_PLUGIN_VERSION = '1.0.0';

export const PLUGIN_LIMITS = {
  maxFiles: 100,
  maxTotalBytes: 1024 * 1024,
  maxPathLength: 240,
  maxPathDepth: 16,
  maxDescriptionLength: 1000,
  /** Bounds the JSON search; a plugin answer is at most ~1 MiB of content plus escaping. */
  maxAnswerChars: MAX_JSON_ANSWER_CHARS,
} as const;

export const ALLOWED_EXTENSIONS = ['.java', '.yml', '.yaml', '.xml', '.properties', '.md', '.txt', '.json'] as const;

const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$/;
const JAVA_IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// A leading '-' or '@' would turn a file name into a javac option or argfile; a leading '.' hides .mvn/ and friends.
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const JAVA_RESERVED = new Set(
  (
    'abstract assert boolean break byte case catch char class const continue default do double else enum extends ' +
    'final finally float for goto if implements import instanceof int interface long native new package private ' +
    'protected public return short static strictfp super switch synchronized this throw throws transient try void ' +
    'volatile while true false null _'
  ).split(' '),
);

export function isJavaQualifiedName(value: string): boolean {
  return (
    value.length <= 200 &&
    value.split('.').every((segment) => JAVA_IDENTIFIER.test(segment) && !JAVA_RESERVED.has(segment))
  );
}

/** Returns a reason when `path` is not a safe, relative project path; undefined when it is fine. */
export function checkProjectPath(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.includes('\0')) return 'contains a NUL byte';
  if (path.includes('\\')) return 'contains a backslash; use forward slashes';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'is absolute; paths must be relative to the project root';
  if (path.length > PLUGIN_LIMITS.maxPathLength) return `is longer than ${PLUGIN_LIMITS.maxPathLength} characters`;
  const segments = path.split('/');
  if (segments.includes('..')) return 'contains ".."; paths must stay inside the project';
  if (segments.length > PLUGIN_LIMITS.maxPathDepth) return `is deeper than ${PLUGIN_LIMITS.maxPathDepth} directories`;
  const bad = segments.find((segment) => !PATH_SEGMENT.test(segment));
  if (bad !== undefined) {
    return `has segment "${bad}"; segments must match ${PATH_SEGMENT.source} (no empty, hidden or "." segments)`;
  }
  const extension = extensionOf(path);
  if (!(ALLOWED_EXTENSIONS as readonly string[]).includes(extension)) {
    return `has extension "${extension || '(none)'}"; allowed: ${ALLOWED_EXTENSIONS.join(', ')}`;
  }
  return undefined;
}

function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot) : '';
}

/**
 * Parses the model's answer into a validated project. Accepts bare JSON, fenced JSON or JSON with prose
 * around it; fills in plugin.yml and pom.xml when the model left them out.
 */
export function parsePluginProject(modelText: string, fallbackName: string): PluginProject {
  const root = extractJsonObject(modelText);
  const name = optionalString(root, 'name') ?? fallbackName;
  if (!NAME_PATTERN.test(name)) {
    throw new PluginParseError(`name "${truncate(name, 80)}" must match ${NAME_PATTERN.source}`);
  }

  const packageName = requiredString(root, 'packageName');
  if (!isJavaQualifiedName(packageName)) {
    throw new PluginParseError(`packageName "${truncate(packageName, 80)}" is not a valid Java package name`);
  }
  if (packageName === 'org.bukkit' || packageName.startsWith('org.bukkit.')) {
    throw new PluginParseError('packageName must not be inside org.bukkit; Bukkit refuses such plugins');
  }

  const rawMain = requiredString(root, 'mainClass');
  const mainClass = rawMain.includes('.') ? rawMain : `${packageName}.${rawMain}`;
  if (!isJavaQualifiedName(mainClass)) {
    throw new PluginParseError(`mainClass "${truncate(rawMain, 80)}" is not a valid Java class name`);
  }
  if (!mainClass.startsWith(`${packageName}.`)) {
    throw new PluginParseError(`mainClass "${mainClass}" must be inside packageName "${packageName}"`);
  }

  const version = optionalString(root, 'version') ?? DEFAULT_PLUGIN_VERSION;
  if (!VERSION_PATTERN.test(version)) {
    throw new PluginParseError(`version "${truncate(version, 40)}" must match ${VERSION_PATTERN.source}`);
  }

  const description = optionalString(root, 'description');
  if (description !== undefined && description.length > PLUGIN_LIMITS.maxDescriptionLength) {
    throw new PluginParseError(`description is longer than ${PLUGIN_LIMITS.maxDescriptionLength} characters`);
  }

  const files = parseFiles(root.files);
  const project: PluginProject = { name, packageName, mainClass, version, files };
  if (description) project.description = description;

  const mainSource = `${JAVA_SOURCE_ROOT}${mainClass.replace(/\./g, '/')}.java`;
  if (!files.some((file) => file.path === mainSource)) {
    throw new PluginParseError(`files must contain the main class source at ${mainSource}`);
  }
  checkPluginYml(files, mainClass);

  if (!files.some((file) => file.path === PLUGIN_YML_PATH)) {
    files.push({ path: PLUGIN_YML_PATH, content: renderPluginYml(project) });
  }
  if (!files.some((file) => file.path === POM_PATH)) {
    files.push({ path: POM_PATH, content: renderPom(project) });
  }
  return project;
}

function parseFiles(value: unknown): PluginFile[] {
  if (!Array.isArray(value)) throw new PluginParseError('files must be an array of { "path", "content" } objects');
  if (value.length === 0) throw new PluginParseError('files must not be empty');
  if (value.length > PLUGIN_LIMITS.maxFiles) {
    throw new PluginParseError(`files has ${value.length} entries; at most ${PLUGIN_LIMITS.maxFiles} are allowed`);
  }
  const seen = new Set<string>();
  let totalBytes = 0;
  const files = value.map((entry: unknown, index): PluginFile => {
    if (!isRecord(entry) || typeof entry.path !== 'string' || typeof entry.content !== 'string') {
      throw new PluginParseError(`files[${index}] must be an object with string "path" and "content"`);
    }
    const { path, content } = entry;
    const problem = checkProjectPath(path);
    if (problem) throw new PluginParseError(`files[${index}].path "${truncate(path, 120)}" ${problem}`);
    if (seen.has(path)) throw new PluginParseError(`files[${index}].path "${path}" appears more than once`);
    seen.add(path);
    if (path.endsWith('.java') && !path.startsWith(JAVA_SOURCE_ROOT)) {
      throw new PluginParseError(`files[${index}].path "${path}": Java sources must be under ${JAVA_SOURCE_ROOT}`);
    }
    if (path.endsWith('/plugin.yml') || path === 'plugin.yml') {
      if (path !== PLUGIN_YML_PATH) {
        throw new PluginParseError(`files[${index}].path "${path}": plugin.yml must be at ${PLUGIN_YML_PATH}`);
      }
    }
    totalBytes += Buffer.byteLength(content, 'utf8');
    if (totalBytes > PLUGIN_LIMITS.maxTotalBytes) {
      throw new PluginParseError(`files exceed ${PLUGIN_LIMITS.maxTotalBytes} bytes of content in total`);
    }
    return { path, content };
  });
  const clash = files.find((file) => seen.has(file.path.slice(0, file.path.lastIndexOf('/'))));
  if (clash) throw new PluginParseError(`files: "${clash.path}" lies inside "${clash.path.slice(0, clash.path.lastIndexOf('/'))}", which is a file`);
  return files;
}

/** A plugin.yml whose `main` names another class loads nothing; catch it before the server does. */
function checkPluginYml(files: PluginFile[], mainClass: string): void {
  const yml = files.find((file) => file.path === PLUGIN_YML_PATH);
  if (!yml) return;
  const main = /^main:[ \t]*["']?([^"'\s#]+)["']?/m.exec(yml.content)?.[1];
  if (main === undefined) throw new PluginParseError(`${PLUGIN_YML_PATH} has no "main:" entry`);
  if (main !== mainClass) {
    throw new PluginParseError(`${PLUGIN_YML_PATH} says main: ${main}, but mainClass is ${mainClass}`);
  }
}

// JSON strings are valid YAML double-quoted scalars, so JSON.stringify quotes safely.
export function renderPluginYml(project: PluginProject): string {
  const lines = [
    `name: ${project.name}`,
    `version: ${JSON.stringify(project.version)}`,
    `main: ${project.mainClass}`,
    `api-version: ${JSON.stringify(PLUGIN_API_VERSION)}`,
  ];
  if (project.description) lines.push(`description: ${JSON.stringify(project.description)}`);
  return `${lines.join('\n')}\n`;
}

export function renderPom(project: PluginProject): string {
  const description = project.description ? `\n  <description>${escapeXml(project.description)}</description>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>${project.packageName}</groupId>
  <artifactId>${project.name}</artifactId>
  <version>${project.version}</version>
  <packaging>jar</packaging>
  <name>${project.name}</name>${description}

  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>

  <repositories>
    <repository>
      <id>spigot-repo</id>
      <url>https://hub.spigotmc.org/nexus/content/repositories/snapshots/</url>
    </repository>
  </repositories>

  <dependencies>
    <dependency>
      <groupId>org.spigotmc</groupId>
      <artifactId>spigot-api</artifactId>
      <version>${SPIGOT_API_VERSION}</version>
      <scope>provided</scope>
    </dependency>
  </dependencies>
</project>
`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The answer's JSON object, found the way parseJsonAnswer finds it (whole, fenced or inside prose). */
export function extractJsonObject(text: string): Record<string, unknown> {
  const answer = parseJsonAnswer(text);
  if (!answer.ok) throw new PluginParseError(answer.error);
  return answer.value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requiredString(root: Record<string, unknown>, key: string): string {
  const value = root[key];
  if (typeof value !== 'string' || value.trim() === '') {
    throw new PluginParseError(`"${key}" is required and must be a non-empty string`);
  }
  return value.trim();
}

function optionalString(root: Record<string, unknown>, key: string): string | undefined {
  const value = root[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new PluginParseError(`"${key}" must be a string`);
  return value.trim() === '' ? undefined : value.trim();
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

export const PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS = `You write Java plugins for Bukkit/Spigot Minecraft servers (Spigot API ${SPIGOT_API_VERSION}, Java 17).
Answer with exactly one JSON object and nothing else: no prose, no Markdown fences. Its shape:

{
  "name": "HelloWorld",
  "packageName": "com.example.helloworld",
  "mainClass": "com.example.helloworld.HelloWorldPlugin",
  "version": "1.0.0",
  "description": "Greets players when they join.",
  "files": [
    {
      "path": "src/main/java/com/example/helloworld/HelloWorldPlugin.java",
      "content": "package com.example.helloworld;\\n\\nimport org.bukkit.plugin.java.JavaPlugin;\\n\\npublic final class HelloWorldPlugin extends JavaPlugin {\\n    @Override\\n    public void onEnable() {\\n        getLogger().info(\\"HelloWorld enabled\\");\\n    }\\n}\\n"
    },
    {
      "path": "src/main/resources/plugin.yml",
      "content": "name: HelloWorld\\nversion: \\"1.0.0\\"\\nmain: com.example.helloworld.HelloWorldPlugin\\napi-version: \\"${PLUGIN_API_VERSION}\\"\\n"
    }
  ]
}

Rules:
- "name" matches ${NAME_PATTERN.source}; "packageName" is a valid Java package outside org.bukkit; "mainClass" is the fully qualified class that extends JavaPlugin and lies inside "packageName".
- Every Java source is under src/main/java/ in the folder of its package; the main class's file must be present.
- plugin.yml is at ${PLUGIN_YML_PATH} and its "main" equals "mainClass". pom.xml, if you include it, is at the project root and uses spigot-api with scope "provided".
- Paths are relative, use forward slashes, contain no "..", no hidden (dot) folders and no spaces; allowed extensions: ${ALLOWED_EXTENSIONS.join(' ')}.
- At most ${PLUGIN_LIMITS.maxFiles} files and ${PLUGIN_LIMITS.maxTotalBytes} bytes of content in total.
- "content" is the full file text as a JSON string (escape quotes, backslashes and newlines).
- Use only the Bukkit/Spigot API and the Java standard library. No build scripts, shell commands, Maven plugins that run programs, or native code.`;

/** The answer's shape as a JSON schema, for models that take structured output; parsePluginProject still checks everything. */
export const PLUGIN_PROJECT_SCHEMA = {
  name: 'plugin_project',
  schema: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      packageName: { type: 'string' },
      mainClass: { type: 'string' },
      version: { type: 'string' },
      description: { type: 'string' },
      files: {
        type: 'array',
        items: {
          type: 'object',
          properties: { path: { type: 'string' }, content: { type: 'string' } },
          required: ['path', 'content'],
        },
      },
    },
    required: ['packageName', 'mainClass', 'files'],
  },
};

const MAX_REPAIR_ECHO_CHARS = 32_000;

/** The follow-up message for the single repair attempt after `parsePluginProject` rejected an answer. */
export function buildRepairPrompt(badAnswer: string, error: string): string {
  const echoed =
    badAnswer.length <= MAX_REPAIR_ECHO_CHARS
      ? badAnswer
      : `${badAnswer.slice(0, MAX_REPAIR_ECHO_CHARS)}\n[... ${badAnswer.length - MAX_REPAIR_ECHO_CHARS} more characters omitted]`;
  return `Your previous answer could not be used: ${error}

Answer again with only the corrected JSON object in the required format: no prose, no Markdown fences. Keep what was already correct and fix the problem named above. If the answer was cut off, make the project smaller (fewer files, shorter comments).

Your previous answer:
<<<
${echoed}
>>>`;
}
