import {
  PLUGIN_LIMITS,
  PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS,
  PLUGIN_YML_PATH,
  POM_PATH,
  PluginParseError,
  buildRepairPrompt,
  parsePluginProject,
} from './plugin-project';

const MAIN_SOURCE = 'src/main/java/com/example/greeter/GreeterPlugin.java';
const MAIN_CONTENT = [
  'package com.example.greeter;',
  'import org.bukkit.plugin.java.JavaPlugin;',
  'public final class GreeterPlugin extends JavaPlugin {',
  '  @Override public void onEnable() { getLogger().info("hi {there}\\" }"); }',
  '}',
].join('\n');

function createAnswer(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Greeter',
    packageName: 'com.example.greeter',
    mainClass: 'com.example.greeter.GreeterPlugin',
    version: '1.2.0',
    description: 'Says "hello" & waves',
    files: [{ path: MAIN_SOURCE, content: MAIN_CONTENT }],
    ...overrides,
  };
}

const json = (overrides?: Record<string, unknown>) => JSON.stringify(createAnswer(overrides), null, 2);
const withFile = (path: string, content = 'x') =>
  json({ files: [{ path: MAIN_SOURCE, content: MAIN_CONTENT }, { path, content }] });

describe(parsePluginProject.name, () => {
  it.each([
    ['bare JSON', json()],
    ['JSON in a ```json fence', '```json\n' + json() + '\n```'],
    ['JSON in a bare fence with prose', 'Here is your plugin:\n```\n' + json() + '\n```\nEnjoy!'],
    ['prose with braces before the JSON', 'Use {curly} braces {like this}. ' + json() + ' Done {}.'],
    ['leading whitespace', '\n\n   ' + json()],
  ])('accepts %s', (_label, answer) => {
    const project = parsePluginProject(answer, 'Fallback');
    expect(project).toMatchObject({
      name: 'Greeter',
      packageName: 'com.example.greeter',
      mainClass: 'com.example.greeter.GreeterPlugin',
      version: '1.2.0',
      description: 'Says "hello" & waves',
    });
    expect(project.files.find((f) => f.path === MAIN_SOURCE)?.content).toBe(MAIN_CONTENT);
  });

  it('fills in plugin.yml and pom.xml when the model left them out', () => {
    const project = parsePluginProject(json(), 'Fallback');
    const yml = project.files.find((f) => f.path === PLUGIN_YML_PATH)?.content;
    expect(yml).toContain('name: Greeter\n');
    expect(yml).toContain('version: "1.2.0"\n');
    expect(yml).toContain('main: com.example.greeter.GreeterPlugin\n');
    expect(yml).toMatch(/^api-version: "\d+\.\d+"$/m);
    expect(yml).toContain('description: "Says \\"hello\\" & waves"');
    const pom = project.files.find((f) => f.path === POM_PATH)?.content;
    expect(pom).toContain('<artifactId>spigot-api</artifactId>');
    expect(pom).toContain('<scope>provided</scope>');
    expect(pom).toContain('<description>Says "hello" &amp; waves</description>');
  });

  it('keeps the model\'s own plugin.yml and pom.xml', () => {
    const yml = 'name: Greeter\nmain: "com.example.greeter.GreeterPlugin"\nversion: 1.2.0\n';
    const project = parsePluginProject(
      json({
        files: [
          { path: MAIN_SOURCE, content: MAIN_CONTENT },
          { path: PLUGIN_YML_PATH, content: yml },
          { path: POM_PATH, content: '<project/>' },
        ],
      }),
      'Fallback',
    );
    expect(project.files).toHaveLength(3);
    expect(project.files.find((f) => f.path === PLUGIN_YML_PATH)?.content).toBe(yml);
    expect(project.files.find((f) => f.path === POM_PATH)?.content).toBe('<project/>');
  });

  it('uses the fallback name, a default version, and qualifies a simple main class', () => {
    const project = parsePluginProject(json({ name: undefined, version: undefined, mainClass: 'GreeterPlugin' }), 'MyPlugin');
    expect(project.name).toBe('MyPlugin');
    expect(project.version).toBe('1.0.0');
    expect(project.mainClass).toBe('com.example.greeter.GreeterPlugin');
    expect(project.description).toBe('Says "hello" & waves');
  });

  it('parses the example in its own format instructions', () => {
    const example = PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS.slice(PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS.indexOf('{'));
    const project = parsePluginProject(example, 'Fallback');
    expect(project.name).toBe('HelloWorld');
    expect(project.files.map((f) => f.path)).toContain(PLUGIN_YML_PATH);
  });

  const tooMany = Array.from({ length: PLUGIN_LIMITS.maxFiles + 1 }, (_, i) => ({ path: `docs/n${i}.md`, content: '' }));
  const deep = `${Array.from({ length: PLUGIN_LIMITS.maxPathDepth }, () => 'd').join('/')}/x.txt`;

  it.each<[string, string, string, string?]>([
    ['no JSON at all', 'I cannot help with that.', 'no JSON object'],
    ['a cut-off answer', json().slice(0, 200), 'cut off'],
    ['invalid JSON', '{"name": "X",}', 'invalid'],
    ['a JSON array', '[1, 2]', 'no JSON object'],
    ['missing packageName', json({ packageName: undefined }), '"packageName" is required'],
    ['missing mainClass', json({ mainClass: undefined }), '"mainClass" is required'],
    ['missing files', json({ files: undefined }), 'files must be an array'],
    ['empty files', json({ files: [] }), 'files must not be empty'],
    ['a file without content', json({ files: [{ path: MAIN_SOURCE }] }), 'files[0] must be an object'],
    ['a non-string name', json({ name: 42 }), '"name" must be a string'],
    ['a name with spaces', json({ name: 'My Plugin' }), 'name "My Plugin" must match'],
    ['a name starting with a digit', json({ name: '1Plugin' }), 'must match'],
    ['a name longer than 64', json({ name: 'A'.repeat(65) }), 'must match'],
    ['a bad fallback name', json({ name: undefined }), 'name "bad name!" must match', 'bad name!'],
    ['a package with a keyword', json({ packageName: 'com.class.x' }), 'not a valid Java package'],
    ['a package with a dash', json({ packageName: 'com.my-plugin' }), 'not a valid Java package'],
    ['a package inside org.bukkit', json({ packageName: 'org.bukkit.mine', mainClass: 'Main' }), 'org.bukkit'],
    ['a main class outside the package', json({ mainClass: 'org.other.Main' }), 'must be inside packageName'],
    ['a missing main class source', json({ mainClass: 'com.example.greeter.Other' }), 'main class source'],
    ['a bad version', json({ version: '1.0 beta' }), 'version "1.0 beta" must match'],
    ['path traversal', withFile('../evil.java'), 'contains ".."'],
    ['nested path traversal', withFile('src/main/resources/../../../x.yml'), 'contains ".."'],
    ['an absolute path', withFile('/etc/cron.d/x.txt'), 'is absolute'],
    ['a Windows drive path', withFile('C:/x.txt'), 'is absolute'],
    ['a backslash path', withFile('src\\main\\x.txt'), 'backslash'],
    ['a NUL byte', withFile('a\u0000.txt'), 'NUL'],
    ['a hidden folder', withFile('.mvn/extensions.xml'), 'segment ".mvn"'],
    ['an empty segment', withFile('docs//x.md'), 'segment ""'],
    ['a name that looks like an option', withFile('-J-Xmx1g.txt'), 'segment "-J-Xmx1g.txt"'],
    ['a shell script', withFile('build.sh'), 'extension ".sh"'],
    ['a jar', withFile('lib/x.jar'), 'extension ".jar"'],
    ['no extension', withFile('Makefile'), 'extension "(none)"'],
    ['a too deep path', withFile(deep), 'deeper than'],
    ['a too long path', withFile(`${'a'.repeat(PLUGIN_LIMITS.maxPathLength)}.txt`), 'longer than'],
    ['a duplicate path', withFile(MAIN_SOURCE), 'more than once'],
    ['a file used as a folder', withFile(`${MAIN_SOURCE}/x.txt`), 'which is a file'],
    ['Java outside src/main/java', withFile('src/Other.java'), 'must be under src/main/java/'],
    ['plugin.yml in the wrong place', withFile('plugin.yml', 'main: x'), `must be at ${PLUGIN_YML_PATH}`],
    ['plugin.yml naming another main', withFile(PLUGIN_YML_PATH, 'name: G\nmain: com.example.Other\n'), 'says main: com.example.Other'],
    ['plugin.yml without main', withFile(PLUGIN_YML_PATH, 'name: G\n'), 'no "main:" entry'],
    ['too many files', json({ files: [{ path: MAIN_SOURCE, content: MAIN_CONTENT }, ...tooMany] }), 'at most 100'],
    ['too much content', withFile('docs/big.txt', 'x'.repeat(PLUGIN_LIMITS.maxTotalBytes)), 'bytes of content'],
    ['a huge answer', 'x'.repeat(PLUGIN_LIMITS.maxAnswerChars + 1), 'answer is longer than'],
  ])('rejects %s', (_label, answer, message, fallbackName = 'Fallback') => {
    const parse = () => parsePluginProject(answer, fallbackName);
    expect(parse).toThrow(PluginParseError);
    expect(parse).toThrow(message);
  });
});

describe(buildRepairPrompt.name, () => {
  it('names the error and echoes the previous answer', () => {
    const prompt = buildRepairPrompt('{"name": 1}', '"name" must be a string');
    expect(prompt).toContain('"name" must be a string');
    expect(prompt).toContain('{"name": 1}');
    expect(prompt).toMatch(/only the corrected JSON object/);
  });

  it('truncates a very long previous answer', () => {
    const prompt = buildRepairPrompt('y'.repeat(100_000), 'cut off');
    expect(prompt.length).toBeLessThan(40_000);
    expect(prompt).toContain('more characters omitted');
  });
});
